# Watchdog: the hardware watchdog is fed only when every task has checked in.
#
#   Watchdog(hal, timeout_ms, task_ids)   task_ids: the ids (0..15) that must check in
#   .checkin(task_id)       each task calls it at least once per timeout/2
#   .poll()                 feeds the hardware when all have checked in since the
#                           last feed (the watchdog task calls it every timeout/4)
# A hung task stops the feeding; the hardware resets the board (rp2 machine.WDT,
# or the sim HAL's emulated one, which raises Reset(WATCHDOG)).

class Watchdog:
    def __init__(self, hal, timeout_ms, task_ids):
        self.hal = hal
        self.timeout_ms = timeout_ms
        self._all = 0
        for t in task_ids:
            self._all |= 1 << t
        self._seen = 0
        self.feeds = 0
        self.started = False

    def start(self):
        self.hal.wdt_start(self.timeout_ms)
        self.started = True

    def checkin(self, task_id):
        self._seen |= 1 << task_id

    def missing(self):
        return self._all & ~self._seen

    def poll(self):
        if self._seen & self._all == self._all:
            self.hal.wdt_feed()
            self.feeds += 1
            self._seen = 0
            return True
        return False
