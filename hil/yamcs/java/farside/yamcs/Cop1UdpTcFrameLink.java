package farside.yamcs;

import org.yamcs.YConfiguration;
import org.yamcs.tctm.ccsds.UdpTcFrameLink;

/**
 * Yamcs's UDP TC frame link (one frame a datagram, same options) whose COP-1 virtual channels
 * retransmit a frame as it was first sent: secured once, under its first ARSN
 * (see {@link SecureOnceFrameFactory}).
 */
public class Cop1UdpTcFrameLink extends UdpTcFrameLink {
    @Override
    public void init(String yamcsInstance, String linkName, YConfiguration config) {
        super.init(yamcsInstance, linkName, config);
        int n = SecureOnceFrameFactory.install(multiplexer);
        log.info("{} COP-1 virtual channel(s) retransmit frames as first secured", n);
    }
}
