package farside.yamcs;

import java.lang.reflect.Field;
import java.util.Map;
import java.util.WeakHashMap;

import org.yamcs.ConfigurationException;
import org.yamcs.tctm.ccsds.Cop1TcPacketHandler;
import org.yamcs.tctm.ccsds.MasterChannelFrameMultiplexer;
import org.yamcs.tctm.ccsds.TcFrameFactory;
import org.yamcs.tctm.ccsds.TcManagedParameters.TcVcManagedParameters;
import org.yamcs.tctm.ccsds.TcTransferFrame;
import org.yamcs.tctm.ccsds.VcUplinkHandler;

/**
 * A TC frame factory that encodes (and so secures) a frame once: a frame encoded again is given back
 * the octets it was first sent with.
 *
 * <p>Yamcs 5.12.8's {@code Cop1TcPacketHandler.getFrame()} calls {@code encodeFrame} on every frame it
 * takes off its out queue, and a COP-1 retransmission queues the same {@code TcTransferFrame} again.
 * With an SDLS security association on the virtual channel, {@code encodeFrame} applies security in
 * place, so a retransmitted frame's data field, already encrypted under the first ARSN, was encrypted a
 * second time under a new one: its MAC verifies, FARM-1 accepts it, and it opens to the first ciphertext.
 * FOP-1 (CCSDS 232.1-B-2) retransmits the frames of its sent queue as they were; this factory does.
 */
public class SecureOnceFrameFactory extends TcFrameFactory {
    // frames (by identity: TcTransferFrame keeps Object's equals) -> their octets as first encoded;
    // an entry goes when COP-1 drops the frame from its sent queue
    private final Map<TcTransferFrame, byte[]> encoded = new WeakHashMap<>();

    public SecureOnceFrameFactory(TcVcManagedParameters vmp) {
        super(vmp);
    }

    @Override
    public synchronized byte[] encodeFrame(TcTransferFrame tf) {
        byte[] data = tf.getData();
        byte[] first = encoded.get(tf);
        if (first != null && first.length == data.length) {
            System.arraycopy(first, 0, data, 0, first.length);
            return data;
        }
        super.encodeFrame(tf);
        encoded.put(tf, data.clone());
        return data;
    }

    /**
     * Gives every COP-1 virtual channel of {@code multiplexer} this factory; returns how many.
     * Yamcs builds its COP-1 handlers itself with a package-private factory field, hence reflection.
     */
    public static int install(MasterChannelFrameMultiplexer multiplexer) {
        Field field;
        try {
            field = Cop1TcPacketHandler.class.getDeclaredField("frameFactory");
            field.setAccessible(true);
        } catch (NoSuchFieldException | RuntimeException e) {
            throw new ConfigurationException("farside's COP-1 link needs Yamcs 5.12's Cop1TcPacketHandler"
                    + " (no frameFactory field in this one): " + e);
        }
        int n = 0;
        for (VcUplinkHandler handler : multiplexer.getVcHandlers()) {
            if (handler instanceof Cop1TcPacketHandler) {
                var vmp = (TcVcManagedParameters) handler.getParameters();
                try {
                    field.set(handler, new SecureOnceFrameFactory(vmp));
                } catch (IllegalAccessException e) {
                    throw new ConfigurationException(e);
                }
                n++;
            }
        }
        return n;
    }
}
