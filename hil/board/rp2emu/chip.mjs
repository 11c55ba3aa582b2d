// farside's emulated RP2040: rp2040js plus what a Pico board has around the chip.
//
// Run by hil/board/emulated.py, never by hand:
//   node chip.mjs --bootrom BOOTROM.bin --flash FLASH.img --config '<json>'
//
// What this adds to rp2040js (which emulates the chip, not the board):
// - a flash chip (W25Q16-like, 2 MB) behind the SSI: the bootrom's erase and program
//   commands (CS forced through IO_QSPI) change the flash, written through to FLASH.img,
//   so littlefs writes and renames work and survive stop and start;
// - chip resets: a watchdog timeout or machine.reset() starts a new chip on the same
//   flash, with the watchdog's reset reason set (machine.reset_cause() == WDT_RESET); a
//   power-on starts one with no reason bits (PWRON_RESET);
// - USB enumeration of the CDC interface at every boot (re-enumeration after a reset);
// - the board's pins: PWM duty and direction pins are read out, quadrature encoder
//   edges are driven on the encoder pins, and I2C device models (MPU-6050 byte
//   registers, INA219 16-bit registers) answer on the board's bus from register images
//   the host keeps current.
//
// The host owns time: the chip runs only when told to ("run until t"), so the plant
// and everything else on the host follow the chip's clock, not the wall's.
//
// Messages both ways: type u8, length u32 LE, payload.
//   host -> chip: G run until (f64 s) | u USB octets in | a UART0 octets in
//                 E encoder targets (6 x i32) | I i2c regs (u8 addr, u8 start, octets)
//                 P power (u8: 1 reset (RUN pin), 2 off, 3 on) | Q quit
//   chip -> host: T stopped (f64 s, u32 usb queued, u32 uart queued, u8 powered,
//                 then u16 per watched pin: PWM duty 0..65535 or 0/65535 for a GPIO)
//                 u USB octets out | a UART0 octets out | R reset (u8 cause: 0 power-on,
//                 1 watchdog) | C USB configured | L log line
import fs from 'node:fs';
import { RP2040, USBCDC, ConsoleLogger, LogLevel } from 'rp2040js';

const FLASH_SIZE = 2 * 1024 * 1024;
const CYCLE_NS = 8; // 125 MHz
const GPIO_FUNC_PWM = 4;
const GPIO_FUNC_SIO = 5;
const WATCHDOG_BASE = 0x40058;
const IO_QSPI_BASE = 0x40018;
const QSPI_SS_CTRL = 0x0c;
const SSI_DR0 = 0x60;
const SSI_TXFLR = 0x20;
const SSI_RXFLR = 0x24;
const SSI_SSIENR = 0x08;
const REASON_TIMER = 1;

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  return out;
}

const args = parseArgs(process.argv.slice(2));
const config = JSON.parse(args.config || '{}');
const watched = config.watch || []; // GPIO numbers reported in every T message
const encoderPins = config.encoders || []; // [[a, b], ...]
const i2cBus = config.i2c_bus ?? 1;
const devices = new Map(); // addr -> {kind: 'byte'|'word', regs: Uint8Array(256), ptr}
for (const d of config.i2c_devices || []) {
  devices.set(d.addr, { kind: d.kind, regs: new Uint8Array(512), ptr: 0, first: true });
}

const uniqueId = Buffer.from(config.unique_id || 'E660000000000001', 'hex');
const bootrom = new Uint32Array(fs.readFileSync(args.bootrom).buffer.slice(0));
const flashFd = fs.openSync(args.flash, 'r+');
const flash = new Uint8Array(FLASH_SIZE);
fs.readSync(flashFd, flash, 0, FLASH_SIZE, 0);

// ---- output to the host ---------------------------------------------------------------
const outQueue = [];
function send(type, payload) {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeUInt32LE(payload.length, 1);
  outQueue.push(head, Buffer.from(payload.buffer, payload.byteOffset, payload.length));
}
function flushOut() {
  if (outQueue.length) {
    const all = Buffer.concat(outQueue);
    outQueue.length = 0;
    let off = 0;
    while (off < all.length) {
      try {
        off += fs.writeSync(1, all, off, all.length - off);
      } catch (e) {
        if (e.code !== 'EAGAIN') throw e;
      }
    }
  }
}
function log(text) {
  send('L', Buffer.from(text));
}

// ---- the flash chip -------------------------------------------------------------------
class FlashChip {
  constructor() {
    this.selected = false;
    this.cmd = [];
    this.readAddr = -1;
  }
  select(on) {
    if (on === this.selected) return;
    this.selected = on;
    if (!on) this.finish();
    this.cmd = [];
    this.readAddr = -1;
  }
  addr() {
    return ((this.cmd[1] << 16) | (this.cmd[2] << 8) | this.cmd[3]) % FLASH_SIZE;
  }
  // One octet clocked in; returns the octet clocked out.
  transfer(b) {
    if (!this.selected) return 0;
    const c = this.cmd;
    c.push(b);
    const op = c[0];
    if (op === 0x03 && c.length > 4) return flash[(this.addr() + c.length - 5) % FLASH_SIZE];
    if (op === 0x0b && c.length > 5) return flash[(this.addr() + c.length - 6) % FLASH_SIZE];
    if (op === 0x02 && c.length > 4) {
      const a = this.addr();
      const page = a & ~0xff;
      const at = page | ((a + c.length - 5) & 0xff);
      flash[at] &= b;
      this.dirty(at, 1);
      return 0;
    }
    if (op === 0x9f) return [0, 0xef, 0x40, 0x15][c.length - 1] ?? 0;
    if (op === 0x4b && c.length > 5) return uniqueId[(c.length - 6) & 7]; // 8-octet unique id
    if (op === 0x35) return 0x02; // status 2: QE set
    return 0; // status 1 (0x05): never busy
  }
  finish() {
    const c = this.cmd;
    if (c.length < 4) return;
    const a = this.addr();
    let size = 0;
    if (c[0] === 0x20) size = 4096;
    else if (c[0] === 0x52) size = 32768;
    else if (c[0] === 0xd8) size = 65536;
    if (size) {
      const start = a & ~(size - 1);
      flash.fill(0xff, start, start + size);
      this.dirty(start, size);
    }
  }
  dirty(start, size) {
    mcu.flash.set(flash.subarray(start, start + size), start);
    fs.writeSync(flashFd, flash, start, size, start);
  }
}

// ---- the chip and its board ---------------------------------------------------------------
let mcu = null;
let cdc = null;
let offsetNs = 0; // host time = offsetNs + chip clock
let powered = false;
const usbIn = [];
const uartIn = [];
let flashChip = new FlashChip();
const enc = encoderPins.map(() => ({ pos: 0, target: 0, state: 0, alarm: null, stepNs: 0 }));

function hostNs() {
  return offsetNs + (mcu && powered ? mcu.clock.nanos : 0);
}

function quadOut(i) {
  const e = enc[i];
  const [pa, pb] = encoderPins[i];
  // forward: 00 -> 10 -> 11 -> 01 (A leads B)
  const a = e.state === 1 || e.state === 2;
  const b = e.state === 2 || e.state === 3;
  mcu.gpio[pa].setInputValue(a);
  mcu.gpio[pb].setInputValue(b);
}

function encoderStep(i) {
  const e = enc[i];
  e.alarm.scheduled = false; // fired: rp2040js's clock leaves the flag set
  if (e.pos === e.target) return;
  const dir = e.target > e.pos ? 1 : -1;
  e.pos += dir;
  e.state = (e.state + dir + 4) & 3;
  quadOut(i);
  if (e.pos !== e.target) e.alarm.schedule(e.stepNs);
}

function boot(cause) {
  const clock0 = hostNs();
  mcu = new RP2040();
  mcu.logger = new ConsoleLogger(LogLevel.Error);
  mcu.loadBootrom(bootrom);
  mcu.flash.set(flash);
  offsetNs = clock0;
  powered = true;
  flashChip = new FlashChip();
  usbIn.length = 0; // a reset drops the USB connection: what the host had queued is lost
  // flash chip select through IO_QSPI GPIO_QSPI_SS_CTRL.OUTOVER (2: low, 3: high)
  const qspi = mcu.peripherals[IO_QSPI_BASE];
  const qspiRegs = new Map();
  qspi.readUint32 = (offset) => qspiRegs.get(offset) ?? 0;
  qspi.writeUint32 = (offset, value) => {
    qspiRegs.set(offset, value >>> 0);
    if (offset === QSPI_SS_CTRL) {
      const over = (value >>> 8) & 3;
      flashChip.select(over === 2);
    }
  };
  // The SSI's FIFOs as the bootrom's flash_put_get sees them: every octet clocked out
  // clocks one in (0 while no chip is selected), RXFLR counts them, disabling empties them.
  const ssi = mcu.peripherals[0x18000];
  const ssiRead = ssi.readUint32.bind(ssi);
  const ssiWrite = ssi.writeUint32.bind(ssi);
  const rxFifo = [];
  ssi.readUint32 = (offset) => {
    if (offset === SSI_DR0) return rxFifo.shift() ?? 0;
    if (offset === SSI_RXFLR) return rxFifo.length;
    if (offset === SSI_TXFLR) return 0;
    return ssiRead(offset);
  };
  ssi.writeUint32 = (offset, value) => {
    if (offset === SSI_DR0) {
      rxFifo.push(flashChip.transfer(value & 0xff));
      return;
    }
    if (offset === SSI_SSIENR && !(value & 1)) rxFifo.length = 0;
    ssiWrite(offset, value);
  };
  // resets: the watchdog's own (and machine.reset(), which goes through it)
  const wd = mcu.peripherals[WATCHDOG_BASE];
  wd.reason = cause === 1 ? REASON_TIMER : 0;
  wd.onWatchdogTrigger = () => {
    // the chip resets here: stop its watchdog, or the expired timer fires again at once
    wd.timer.enable = false;
    wd.alarm.enable = false;
    pendingReset = 1;
  };
  // USB CDC towards the host, with flow control: data goes in only when the chip asks
  cdc = new USBCDC(mcu.usbCtrl);
  const usb = mcu.usbCtrl;
  let pendingRead = null;
  const fill = () => {
    while (usbIn.length && cdc.txFIFO.itemCount < cdc.txFIFO.size) cdc.txFIFO.push(usbIn.shift());
    if (pendingRead && cdc.txFIFO.itemCount) {
      const [ep, size] = pendingRead;
      pendingRead = null;
      const buf = new Uint8Array(Math.min(size, cdc.txFIFO.itemCount));
      for (let i = 0; i < buf.length; i++) buf[i] = cdc.txFIFO.pull();
      usb.endpointReadDone(ep, buf);
    }
  };
  usbFill = fill;
  const cdcRead = usb.onEndpointRead;
  usb.onEndpointRead = (endpoint, size) => {
    if (cdc.txFIFO.itemCount === 0 && usbIn.length === 0 && cdc.initialized) {
      pendingRead = [endpoint, size]; // NAK until the host has data
      return;
    }
    fill();
    cdcRead(endpoint, size);
  };
  cdc.onDeviceConnected = () => send('C', Buffer.alloc(0));
  cdc.onSerialData = (data) => send('u', data);
  // UART0 (the link on its own interface)
  mcu.uart[0].onByte = (b) => uartOut.push(b);
  // I2C device models on the board's bus
  const i2c = mcu.i2c[i2cBus];
  let dev = null;
  let reading = false;
  i2c.onStart = () => i2c.completeStart();
  i2c.onConnect = (addr, mode) => {
    dev = devices.get(addr) || null;
    reading = mode === 1;
    if (dev) dev.first = true;
    i2c.completeConnect(!!dev);
  };
  i2c.onWriteByte = (value) => {
    if (dev.first) {
      dev.ptr = dev.kind === 'word' ? value * 2 : value;
      dev.first = false;
    } else {
      dev.regs[dev.ptr & 0x1ff] = value; // writes are accepted (config), the host rewrites data
      dev.ptr++;
    }
    i2c.completeWrite(true);
  };
  i2c.onReadByte = () => {
    i2c.completeRead(dev.regs[dev.ptr & 0x1ff]);
    dev.ptr++;
    if (dev.kind === 'word' && (dev.ptr & 1) === 0) dev.ptr -= 2; // INA219: the same register again
  };
  i2c.onStop = () => i2c.completeStop();
  // encoders: quadrature state kept across resets (the wheels did not move)
  enc.forEach((e, i) => {
    e.alarm = mcu.clock.createAlarm(() => encoderStep(i));
    quadOut(i);
    if (e.pos !== e.target) e.alarm.schedule(e.stepNs || 1000);
  });
  mcu.core.PC = 0x10000000; // boot2 at the start of flash, then the firmware
  send('R', Buffer.from([cause]));
}

let usbFill = () => {};
const uartOut = [];
let pendingReset = 0;

function powerOff() {
  powered = false;
  if (mcu) offsetNs += mcu.clock.nanos;
  mcu = null;
  cdc = null;
  usbIn.length = 0;
  uartIn.length = 0;
}

function runUntil(tNs) {
  if (!powered) {
    if (tNs > offsetNs) offsetNs = tNs;
    return;
  }
  const clock = mcu.clock;
  const core = mcu.core;
  const end = tNs - offsetNs;
  usbFill();
  while (clock.nanos < end) {
    if (uartIn.length && !mcu.uart[0].rxFIFO.full) mcu.uart[0].feedByte(uartIn.shift());
    if (core.waiting) {
      const next = clock.nanosToNextAlarm;
      clock.tick(next > 0 && clock.nanos + next < end ? next : end - clock.nanos);
    } else {
      // a burst of instructions between checks
      for (let i = 0; i < 256 && !core.waiting; i++) clock.tick(core.executeInstruction() * CYCLE_NS);
    }
    if (pendingReset) {
      const cause = pendingReset;
      pendingReset = 0;
      offsetNs += clock.nanos;
      mcu = null;
      boot(cause);
      runUntil(tNs);
      return;
    }
  }
  if (uartOut.length) {
    send('a', Uint8Array.from(uartOut));
    uartOut.length = 0;
  }
}

function pinLevel(pin) {
  if (!mcu || !powered) return 0;
  const g = mcu.gpio[pin];
  const fn = g.functionSelect;
  if (fn === GPIO_FUNC_PWM) {
    const ch = mcu.pwm.channels[(pin >> 1) & 7];
    if (!(ch.csr & 1)) return 0;
    const cc = pin & 1 ? ch.cc >>> 16 : ch.cc & 0xffff;
    const top = ch.top + 1;
    return Math.min(65535, Math.round((cc * 65535) / top));
  }
  if (fn === GPIO_FUNC_SIO) return g.outputEnable && g.outputValue ? 65535 : 0;
  return 0;
}

function stopped() {
  const b = Buffer.alloc(17 + 2 * watched.length);
  b.writeDoubleLE(hostNs() / 1e9, 0);
  b.writeUInt32LE(usbIn.length + (cdc ? cdc.txFIFO.itemCount : 0), 8);
  b.writeUInt32LE(uartIn.length, 12);
  b[16] = powered ? 1 : 0;
  watched.forEach((pin, i) => b.writeUInt16LE(pinLevel(pin), 17 + 2 * i));
  send('T', b);
}

function setEncoders(payload) {
  const dtNs = payload.readDoubleLE(0) * 1e9;
  enc.forEach((e, i) => {
    const target = payload.readInt32LE(8 + 4 * i);
    e.target = target;
    const n = Math.abs(target - e.pos);
    e.stepNs = n ? Math.max(1000, Math.floor(dtNs / n)) : 0;
    if (mcu && powered && n && !e.alarm.scheduled) e.alarm.schedule(e.stepNs);
    if (!powered || !mcu) {
      e.pos = target; // nothing counts while the chip is off
    }
  });
}

function handle(type, payload) {
  switch (type) {
    case 'G':
      runUntil(Math.round(payload.readDoubleLE(0) * 1e9));
      stopped();
      break;
    case 'u':
      if (powered) for (const b of payload) usbIn.push(b);
      usbFill();
      break;
    case 'a':
      if (powered) for (const b of payload) uartIn.push(b);
      break;
    case 'E':
      setEncoders(payload);
      break;
    case 'I': {
      const dev = devices.get(payload[0]);
      if (dev) dev.regs.set(payload.subarray(2), dev.kind === 'word' ? payload[1] * 2 : payload[1]);
      break;
    }
    case 'P':
      if (payload[0] === 1) {
        powerOff();
        boot(0);
      } else if (payload[0] === 2) powerOff();
      else if (payload[0] === 3 && !powered) boot(0);
      stopped();
      break;
    case 'Q':
      flushOut();
      fs.closeSync(flashFd);
      process.exit(0);
      break;
    default:
      log(`unknown message ${type}`);
  }
}

let inbuf = Buffer.alloc(0);
process.stdin.on('data', (chunk) => {
  inbuf = inbuf.length ? Buffer.concat([inbuf, chunk]) : chunk;
  while (inbuf.length >= 5) {
    const n = inbuf.readUInt32LE(1);
    if (inbuf.length < 5 + n) break;
    const type = String.fromCharCode(inbuf[0]);
    const payload = inbuf.subarray(5, 5 + n);
    inbuf = inbuf.subarray(5 + n);
    handle(type, payload);
  }
  flushOut();
});
process.stdin.on('end', () => process.exit(0));

boot(0);
flushOut();
