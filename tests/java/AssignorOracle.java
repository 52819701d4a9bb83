import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.Subscription;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

/**
 * Test oracle for the Java client's range assignor with racks (KIP-881).
 *
 * <p>Usage: {@code AssignorOracle < cases}. One case per input line:
 * {@code topics;members}, where {@code topics} is {@code t:racks|racks|...,...}
 * (one {@code racks} entry per partition: rack names joined by {@code +},
 * empty for a partition without rack information) and {@code members} is
 * {@code id/rack/topic+topic,...} ({@code -} for no rack).
 *
 * <p>For each case prints one line: the members in id order, each as
 * {@code id=t-p t-p ...} (partitions sorted), joined by {@code ;}, computed
 * by {@code RangeAssignor.assignPartitions}.
 */
public final class AssignorOracle {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        RangeAssignor range = new RangeAssignor();
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) continue;
            String[] parts = line.split(";", -1);
            Map<String, List<PartitionInfo>> partitions = new HashMap<>();
            Map<String, Node> nodes = new HashMap<>();
            for (String t : parts[0].split(",")) {
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
            Map<String, Subscription> subs = new HashMap<>();
            for (String m : parts[1].split(",")) {
                if (m.isEmpty()) continue;
                String[] f = m.split("/", -1);
                List<String> topics = f[2].isEmpty() ? Collections.emptyList() : Arrays.asList(f[2].split("\\+"));
                Optional<String> rack = f[1].equals("-") ? Optional.empty() : Optional.of(f[1]);
                subs.put(f[0], new Subscription(topics, null, Collections.emptyList(), -1, rack));
            }
            Map<String, List<TopicPartition>> out = range.assignPartitions(partitions, subs);
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
            System.out.println(sb);
        }
    }
}
