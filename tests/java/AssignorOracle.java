import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.Subscription;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.internals.AbstractStickyAssignor;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

/**
 * Test oracle for the Java client's range and cooperative-sticky assignors
 * with racks (KIP-881).
 *
 * <p>Usage: {@code AssignorOracle < cases}. One case per input line:
 * {@code assignor;topics;members}. {@code assignor} is {@code range} or
 * {@code sticky}; {@code topics} is {@code t:racks|racks|...,...} (one
 * {@code racks} entry per partition: rack names joined by {@code +}, empty
 * for a partition without rack information); {@code members} is
 * {@code id/rack/topic+topic/owned/generation,...} ({@code -} for no rack;
 * {@code owned} is {@code t-p+t-p...}, the partitions the member owns from
 * the previous generation, possibly empty; {@code generation} is that
 * generation, -1 for none; range ignores the last two fields).
 *
 * <p>For each case prints one line: the members in id order, each as
 * {@code id=t-p t-p ...} (partitions sorted), joined by {@code ;}. For range
 * the result of {@code RangeAssignor.assignPartitions}. For sticky two such
 * lists joined by {@code |}: what {@code CooperativeStickyAssignor.assignPartitions}
 * returns (the partitions still owned by another member left out), then the
 * planned assignment before that adjustment (Java's
 * {@code AbstractStickyAssignor.assignPartitions}); or {@code error: } and
 * the exception when Java's sticky assignor throws. Fresh assignor instances
 * per case: the sticky ones remember the highest generation they saw.
 * Subscriptions are passed in member id order (a TreeMap), so Java's
 * iteration order is fixed.
 */
public final class AssignorOracle {
    /** Opens up {@code CooperativeStickyAssignor}'s reading of a subscription. */
    static final class Cooperative extends CooperativeStickyAssignor {
        MemberData data(Subscription subscription) {
            return memberData(subscription);
        }
    }

    /** Java's sticky algorithm with the cooperative assignor's member data, without the cooperative adjustment. */
    static final class Planned extends AbstractStickyAssignor {
        private final Cooperative cooperative = new Cooperative();

        @Override
        protected MemberData memberData(Subscription subscription) {
            return cooperative.data(subscription);
        }

        @Override
        public String name() {
            return "planned";
        }
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) continue;
            String[] parts = line.split(";", -1);
            Map<String, List<PartitionInfo>> partitions = new HashMap<>();
            Map<String, Node> nodes = new HashMap<>();
            for (String t : parts[1].split(",")) {
                if (t.isEmpty()) continue;
                String[] tp = t.split(":", -1);
                String topic = tp[0];
                List<PartitionInfo> list = new ArrayList<>();
                String[] per = tp[1].split("\\|", -1);
                for (int p = 0; p < per.length; p++) {
                    List<Node> replicas = new ArrayList<>();
                    if (!per[p].isEmpty()) {
                        for (String rack : per[p].split("\\+")) {
                            replicas.add(nodes.computeIfAbsent(rack,
                                    r -> new Node(nodes.size(), "h", 1, r)));
                        }
                    } else {
                        replicas.add(new Node(1000, "h", 1, null));
                    }
                    Node[] arr = replicas.toArray(new Node[0]);
                    list.add(new PartitionInfo(topic, p, arr[0], arr, arr));
                }
                partitions.put(topic, list);
            }
            Map<String, Subscription> subs = new TreeMap<>();
            for (String m : parts[2].split(",")) {
                if (m.isEmpty()) continue;
                String[] f = m.split("/", -1);
                List<String> topics = f[2].isEmpty() ? Collections.emptyList() : Arrays.asList(f[2].split("\\+"));
                Optional<String> rack = f[1].equals("-") ? Optional.empty() : Optional.of(f[1]);
                List<TopicPartition> owned = new ArrayList<>();
                int generation = -1;
                if (f.length > 3) {
                    for (String o : f[3].split("\\+")) {
                        if (o.isEmpty()) continue;
                        int dash = o.lastIndexOf('-');
                        owned.add(new TopicPartition(o.substring(0, dash), Integer.parseInt(o.substring(dash + 1))));
                    }
                    generation = Integer.parseInt(f[4]);
                }
                subs.put(f[0], new Subscription(topics, null, owned, generation, rack));
            }
            // Only subscribed topics, as AbstractPartitionAssignor.assign(Cluster, ...) passes them.
            Set<String> subscribed = new HashSet<>();
            subs.values().forEach(s -> subscribed.addAll(s.topics()));
            partitions.keySet().retainAll(subscribed);
            switch (parts[0]) {
                case "range":
                    System.out.println(format(new RangeAssignor().assignPartitions(partitions, subs)));
                    break;
                case "sticky":
                    try {
                        String assigned = format(new CooperativeStickyAssignor().assignPartitions(partitions, subs));
                        String planned = format(new Planned().assignPartitions(partitions, subs));
                        System.out.println(assigned + "|" + planned);
                    } catch (RuntimeException e) {
                        // Java's general builder has corner cases it fails on
                        // (e.g. a stale claim by a member it set aside); report
                        // instead of stopping the whole run.
                        System.out.println("error: " + e);
                    }
                    break;
                default:
                    throw new IllegalArgumentException("unknown assignor " + parts[0]);
            }
        }
    }

    private static String format(Map<String, List<TopicPartition>> out) {
        TreeMap<String, List<TopicPartition>> sorted = new TreeMap<>(out);
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, List<TopicPartition>> e : sorted.entrySet()) {
            if (sb.length() > 0) sb.append(';');
            sb.append(e.getKey()).append('=');
            List<TopicPartition> tps = new ArrayList<>(e.getValue());
            tps.sort((a, b) -> a.topic().equals(b.topic())
                    ? Integer.compare(a.partition(), b.partition()) : a.topic().compareTo(b.topic()));
            for (int i = 0; i < tps.size(); i++) {
                if (i > 0) sb.append(' ');
                sb.append(tps.get(i).topic()).append('-').append(tps.get(i).partition());
            }
        }
        return sb.toString();
    }
}
