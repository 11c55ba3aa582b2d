// Runs Yamcs's own SDLS security association (SecurityAssociationAes256Gcm128, AES-256-GCM with
// a 128-bit MAC) on TC frames, so the tests can check farside's frames against Yamcs's code
// with Yamcs in its own process. One request per line on stdin, one answer per line on stdout:
//
//   open KEYHEX SPI FRAMEHEX            -> "<status> <plaintext hex>"   (frame without FECF)
//   seal KEYHEX SPI ARSN HDRHEX DATAHEX -> "<frame hex>"                (without FECF)
//   mask MASKHEX                        -> "ok": the authentication mask from now on
//
// The authentication mask starts as Yamcs's standard one for a TC frame without a segment
// header: the primary header's VCID (00 00 FC 00 00), then the security header's SPI (FF FF)
// and its IV masked out (12 zero octets); `mask` sets a custom one (a link's authMask).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.HexFormat;

import org.yamcs.security.sdls.SecurityAssociationAes256Gcm128;

public class SdlsCheck {
    static final int HDR = 5;
    static final int SEC_HDR = 14;
    static final int MAC = 16;

    static byte[] mask() {
        byte[] m = new byte[HDR + SEC_HDR];
        m[2] = (byte) 0xFC;
        m[HDR] = (byte) 0xFF;
        m[HDR + 1] = (byte) 0xFF;
        return m;
    }

    public static void main(String[] args) throws Exception {
        HexFormat hex = HexFormat.of();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        byte[] authMask = mask();
        while ((line = in.readLine()) != null) {
            String[] w = line.trim().split(" ");
            if (w[0].equals("mask") && w.length == 2) {
                authMask = hex.parseHex(w[1]);
                System.out.println("ok");
                continue;
            }
            if (w.length < 4) {
                continue;
            }
            byte[] key = hex.parseHex(w[1]);
            short spi = (short) Integer.parseInt(w[2]);
            var sa = new SecurityAssociationAes256Gcm128(key, spi, 64, true);
            if (w[0].equals("open")) {
                byte[] frame = hex.parseHex(w[3]);
                var status = sa.processSecurity(frame, 0, HDR, frame.length, authMask);
                String plain = hex.formatHex(frame, HDR + SEC_HDR, frame.length - MAC);
                System.out.println(status + " " + plain);
            } else {
                long arsn = Long.parseLong(w[3]);
                byte[] header = hex.parseHex(w[4]);
                byte[] data = w.length > 5 ? hex.parseHex(w[5]) : new byte[0];
                byte[] iv = new byte[12];
                for (int i = 0; i < 8; i++) {
                    iv[11 - i] = (byte) (arsn >>> (8 * i));
                }
                sa.setSeqNum(iv);
                byte[] frame = new byte[HDR + SEC_HDR + data.length + MAC];
                System.arraycopy(header, 0, frame, 0, HDR);
                System.arraycopy(data, 0, frame, HDR + SEC_HDR, data.length);
                sa.applySecurity(frame, 0, HDR, frame.length, authMask);
                System.out.println(hex.formatHex(frame));
            }
            System.out.flush();
        }
    }
}
