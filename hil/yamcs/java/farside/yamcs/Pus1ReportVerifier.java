package farside.yamcs;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;

import org.yamcs.algorithms.AlgorithmExecutionContext;
import org.yamcs.algorithms.AlgorithmExecutionResult;
import org.yamcs.mdb.ProcessingContext;
import org.yamcs.parameter.ParameterValue;
import org.yamcs.parameter.ParameterValueList;
import org.yamcs.parameter.RawEngValue;
import org.yamcs.pus.Pus1Verifier;
import org.yamcs.xtce.Algorithm;
import org.yamcs.xtce.InputParameter;
import org.yamcs.xtce.ParameterInstanceRef;

/**
 * Yamcs's PUS-1 verifier that keeps the reports it has seen until the command's own sequence
 * count arrives.
 * <p>
 * The stock verifier compares the latest report with the sequence count the PUS postprocessor
 * assigned, which reaches the verifier through the command history, on another thread than the
 * telemetry. When a report comes first (a busy server, a fast link), the stock verifier finds
 * no match, and by the time the count arrives the report parameters hold a later report: the
 * stage stays pending until completion cancels it, although the rover did report it. This one
 * remembers the last {@value #REMEMBERED} reports of its stage (every input from the report's
 * APID on) and, while it has no result, tries each against the current command inputs with the
 * stock rules (same inputs, same order, same failure template).
 */
public class Pus1ReportVerifier extends Pus1Verifier {
    static final int REMEMBERED = 64;
    private static final int FIRST_REPORT_INPUT = 2; // sentApid, sentSeqCount, then the report's

    private final ArrayDeque<List<RawEngValue>> reports = new ArrayDeque<>();

    public Pus1ReportVerifier(Algorithm algorithmDef, AlgorithmExecutionContext execCtx,
            HashMap<String, Object> config) {
        super(algorithmDef, execCtx, config);
    }

    @Override
    public synchronized AlgorithmExecutionResult execute(long acqTime, long genTime, ProcessingContext pctx) {
        takePacket(pctx);
        remember();
        AlgorithmExecutionResult now = super.execute(acqTime, genTime, pctx);
        if (now != NO_RESULT || inputValues.get(0) == null || inputValues.get(1) == null) {
            return now;
        }
        List<RawEngValue> current = new ArrayList<>(inputValues);
        try {
            for (List<RawEngValue> report : reports) {
                for (int i = FIRST_REPORT_INPUT; i < report.size(); i++) {
                    inputValues.set(i, report.get(i));
                }
                AlgorithmExecutionResult earlier = super.execute(acqTime, genTime, pctx);
                if (earlier != NO_RESULT) {
                    return earlier;
                }
            }
        } finally {
            for (int i = FIRST_REPORT_INPUT; i < current.size(); i++) {
                inputValues.set(i, current.get(i));
            }
        }
        return NO_RESULT;
    }

    /**
     * Takes the report inputs the packet being processed carries. Yamcs 5.12.8 now and then runs
     * a verifier on a report packet with its inputs still holding the previous report: with the
     * inputs logged, the acceptance verifier run on a 1/1 packet kept the last 1/7's request id
     * and subtype although the packet carried the new ones (the start verifier, run on the same
     * packet, had its subtype). The next packet's subtype then hid the report, and completion
     * cancelled the stage (a CI run's "Acceptance CANCELLED, Start OK, Completion OK").
     */
    private void takePacket(ProcessingContext pctx) {
        ParameterValueList tm = pctx == null ? null : pctx.getTmParams();
        if (tm == null || tm.isEmpty()) {
            return;
        }
        List<InputParameter> inputs = algorithmDef.getInputList();
        for (int i = FIRST_REPORT_INPUT; i < inputs.size(); i++) {
            ParameterInstanceRef ref = inputs.get(i).getParameterInstance();
            ParameterValue pv = ref == null ? null : tm.getLastInserted(ref.getParameter());
            if (pv != null) {
                inputValues.set(i, pv);
            }
        }
    }

    /** Keeps the report inputs when they hold a report not yet kept (new values each packet). */
    private void remember() {
        RawEngValue seq = inputValues.get(FIRST_REPORT_INPUT + 1);
        if (seq == null) {
            return;
        }
        List<RawEngValue> last = reports.peekLast();
        if (last != null && last.get(FIRST_REPORT_INPUT + 1) == seq) {
            return;
        }
        reports.addLast(new ArrayList<>(inputValues));
        if (reports.size() > REMEMBERED) {
            reports.removeFirst();
        }
    }
}
