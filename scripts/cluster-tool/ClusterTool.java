import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ElectionNotNeededException;
import org.apache.kafka.common.TopicPartitionInfo;

/**
 * Cluster queries for scripts/cluster, with the Java Admin client (kafka-clients
 * is on the broker's classpath, .kafka/lib). Compiled by scripts/cluster into
 * .kafka/cluster/tools.
 *
 * <p>Usage:
 * <pre>
 *   ClusterTool leader &lt;bootstrap&gt; &lt;topic&gt; &lt;partition&gt;
 *       the partition leader's node id (-1 when it has none)
 *   ClusterTool wait-leader &lt;bootstrap&gt; &lt;topic&gt; &lt;partition&gt; &lt;not-node&gt; &lt;timeout-ms&gt;
 *       polls every 50 ms until the leader is a node other than not-node
 *       (and not -1); prints "&lt;node&gt; &lt;elapsed-ms&gt; &lt;epoch-ms&gt;" (the new
 *       leader, when it was first seen: since the start, since 1970); exit 1 on timeout
 *   ClusterTool describe &lt;bootstrap&gt; &lt;topic&gt;
 *       one line per partition: "&lt;p&gt; leader=&lt;id&gt; replicas=1,2,3 isr=1,2"
 *   ClusterTool create &lt;bootstrap&gt; &lt;topic&gt; &lt;partitions&gt; [&lt;replication-factor&gt;]
 *       creates the topic (replication factor: the broker's default unless given);
 *       an existing topic is an error
 *   ClusterTool elect-unclean &lt;bootstrap&gt; &lt;topic&gt; &lt;partition&gt;
 *       an unclean leader election (Admin.electLeaders UNCLEAN): a live replica
 *       outside the ISR becomes leader, records only the old leader had are lost;
 *       a partition that has a leader already is left alone
 *   ClusterTool ready &lt;bootstrap&gt; &lt;nodes&gt;
 *       exit 0 when the cluster reports at least that many live (unfenced)
 *       brokers and an active controller, else prints what it saw, exit 1
 * </pre>
 * Short client timeouts, so that a dead (connection refused) or paused
 * (SIGSTOP: connects, never answers) node among the bootstrap servers only
 * costs one request timeout before another node is asked. Exit 1 on error,
 * 2 on bad usage.
 */
public final class ClusterTool {
    private static final int API_TIMEOUT_MS = 10_000;

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            usage();
        }
        String cmd = args[0];
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "skotch-cluster-tool");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "1500");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(API_TIMEOUT_MS));
        props.put(AdminClientConfig.SOCKET_CONNECTION_SETUP_TIMEOUT_MS_CONFIG, "1000");
        props.put(AdminClientConfig.SOCKET_CONNECTION_SETUP_TIMEOUT_MAX_MS_CONFIG, "2000");
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "50");
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        props.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, "50");
        props.put(AdminClientConfig.RETRY_BACKOFF_MAX_MS_CONFIG, "500");
        props.put(AdminClientConfig.METADATA_MAX_AGE_CONFIG, "1000");
        int code;
        try (Admin admin = Admin.create(props)) {
            switch (cmd) {
                case "leader":
                    if (args.length != 4) {
                        usage();
                    }
                    System.out.println(leader(admin, args[2], Integer.parseInt(args[3])));
                    code = 0;
                    break;
                case "wait-leader":
                    if (args.length != 6) {
                        usage();
                    }
                    code = waitLeader(admin, args[2], Integer.parseInt(args[3]),
                        Integer.parseInt(args[4]), Long.parseLong(args[5]));
                    break;
                case "describe":
                    if (args.length != 3) {
                        usage();
                    }
                    describe(admin, args[2]);
                    code = 0;
                    break;
                case "create":
                    if (args.length != 4 && args.length != 5) {
                        usage();
                    }
                    create(admin, args[2], Integer.parseInt(args[3]),
                        args.length == 5 ? Optional.of(Short.parseShort(args[4])) : Optional.empty());
                    code = 0;
                    break;
                case "elect-unclean":
                    if (args.length != 4) {
                        usage();
                    }
                    electUnclean(admin, args[2], Integer.parseInt(args[3]));
                    code = 0;
                    break;
                case "ready":
                    if (args.length != 3) {
                        usage();
                    }
                    code = ready(admin, Integer.parseInt(args[2]));
                    break;
                default:
                    usage();
                    return;
            }
        } catch (ExecutionException e) {
            System.err.println("ClusterTool " + cmd + ": " + e.getCause());
            code = 1;
        }
        System.exit(code);
    }

    private static TopicDescription topic(Admin admin, String topic) throws Exception {
        Map<String, TopicDescription> all = admin
            .describeTopics(List.of(topic), new DescribeTopicsOptions().timeoutMs(API_TIMEOUT_MS))
            .allTopicNames()
            .get(API_TIMEOUT_MS + 1000L, TimeUnit.MILLISECONDS);
        return all.get(topic);
    }

    private static void electUnclean(Admin admin, String topic, int partition) throws Exception {
        TopicPartition tp = new TopicPartition(topic, partition);
        try {
            admin.electLeaders(ElectionType.UNCLEAN, java.util.Set.of(tp))
                .partitions()
                .get(API_TIMEOUT_MS + 1000L, TimeUnit.MILLISECONDS)
                .get(tp)
                .ifPresent(e -> {
                    if (!(e instanceof ElectionNotNeededException)) {
                        throw new RuntimeException(e);
                    }
                });
        } catch (RuntimeException e) {
            throw new ExecutionException(e.getCause() != null ? e.getCause() : e);
        }
    }

    private static int leader(Admin admin, String topic, int partition) throws Exception {
        for (TopicPartitionInfo p : topic(admin, topic).partitions()) {
            if (p.partition() == partition) {
                Node l = p.leader();
                return l == null || l.isEmpty() ? -1 : l.id();
            }
        }
        throw new ExecutionException(new IllegalArgumentException(
            "topic " + topic + " has no partition " + partition));
    }

    private static int waitLeader(Admin admin, String topic, int partition, int notNode,
            long timeoutMs) throws Exception {
        long t0 = System.nanoTime();
        long deadline = t0 + timeoutMs * 1_000_000L;
        int last = notNode;
        while (System.nanoTime() < deadline) {
            try {
                last = leader(admin, topic, partition);
                if (last != notNode && last != -1) {
                    System.out.println(last + " " + (System.nanoTime() - t0) / 1_000_000L + " "
                        + System.currentTimeMillis());
                    return 0;
                }
            } catch (ExecutionException e) {
                // A request to a dead or paused node: try again.
            }
            Thread.sleep(50);
        }
        System.err.println("ClusterTool wait-leader: " + topic + "-" + partition
            + " still led by " + last + " after " + timeoutMs + " ms");
        return 1;
    }

    private static void describe(Admin admin, String topic) throws Exception {
        for (TopicPartitionInfo p : topic(admin, topic).partitions()) {
            Node l = p.leader();
            System.out.println(p.partition() + " leader=" + (l == null || l.isEmpty() ? -1 : l.id())
                + " replicas=" + ids(p.replicas()) + " isr=" + ids(p.isr()));
        }
    }

    private static void create(Admin admin, String topic, int partitions, Optional<Short> rf)
            throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, Optional.of(partitions), rf)))
            .all()
            .get(API_TIMEOUT_MS + 1000L, TimeUnit.MILLISECONDS);
    }

    private static int ready(Admin admin, int want) throws Exception {
        var cluster = admin.describeCluster(new DescribeClusterOptions().timeoutMs(API_TIMEOUT_MS));
        var nodes = cluster.nodes().get(API_TIMEOUT_MS + 1000L, TimeUnit.MILLISECONDS);
        Node controller = cluster.controller().get(API_TIMEOUT_MS + 1000L, TimeUnit.MILLISECONDS);
        if (nodes.size() >= want && controller != null && !controller.isEmpty()) {
            return 0;
        }
        System.err.println("ClusterTool ready: " + nodes.size() + " of " + want
            + " brokers live (" + ids(List.copyOf(nodes)) + ")");
        return 1;
    }

    private static String ids(List<Node> nodes) {
        return nodes.stream().map(n -> String.valueOf(n.id())).collect(Collectors.joining(","));
    }

    private static void usage() {
        System.err.println("usage: ClusterTool leader <bootstrap> <topic> <partition>\n"
            + "       ClusterTool wait-leader <bootstrap> <topic> <partition> <not-node> <timeout-ms>\n"
            + "       ClusterTool describe <bootstrap> <topic>\n"
            + "       ClusterTool create <bootstrap> <topic> <partitions> [<replication-factor>]\n"
            + "       ClusterTool elect-unclean <bootstrap> <topic> <partition>\n"
            + "       ClusterTool ready <bootstrap> <nodes>");
        System.exit(2);
    }
}
