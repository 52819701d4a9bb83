import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/**
 * Topic administration with the Java AdminClient.
 *
 * <p>Usage:
 * <pre>
 *   JavaAdmin create &lt;bootstrap&gt; &lt;topic&gt; &lt;partitions&gt; [--if-not-exists] [--config k=v]...
 *   JavaAdmin delete &lt;bootstrap&gt; &lt;topic&gt; [--if-exists]
 *   JavaAdmin list &lt;bootstrap&gt;
 * </pre>
 * Replication factor is 1 (single broker). Exit code 0 on success, 1 on error.
 */
public final class JavaAdmin {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            usage();
        }
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "skotch-java-admin");
        try (Admin admin = Admin.create(props)) {
            switch (args[0]) {
                case "create": create(admin, args); break;
                case "delete": delete(admin, args); break;
                case "list":
                    for (String name : admin.listTopics().names().get()) {
                        System.out.println(name);
                    }
                    break;
                default: usage();
            }
        }
    }

    private static void create(Admin admin, String[] args) throws Exception {
        if (args.length < 4) {
            usage();
        }
        String topic = args[2];
        int partitions = Integer.parseInt(args[3]);
        boolean ifNotExists = false;
        Map<String, String> configs = new HashMap<>();
        for (int i = 4; i < args.length; i++) {
            if (args[i].equals("--if-not-exists")) {
                ifNotExists = true;
            } else if (args[i].equals("--config") && i + 1 < args.length) {
                String[] kv = args[++i].split("=", 2);
                if (kv.length != 2) {
                    usage();
                }
                configs.put(kv[0], kv[1]);
            } else {
                usage();
            }
        }
        NewTopic newTopic = new NewTopic(topic, Optional.of(partitions), Optional.of((short) 1)).configs(configs);
        try {
            admin.createTopics(List.of(newTopic)).all().get();
            System.err.println("created topic " + topic + " with " + partitions + " partitions");
        } catch (ExecutionException e) {
            if (ifNotExists && e.getCause() instanceof TopicExistsException) {
                System.err.println("topic " + topic + " already exists");
                return;
            }
            System.err.println("create " + topic + " failed: " + e.getCause());
            System.exit(1);
        }
    }

    private static void delete(Admin admin, String[] args) throws Exception {
        if (args.length < 3) {
            usage();
        }
        boolean ifExists = args.length > 3 && args[3].equals("--if-exists");
        try {
            admin.deleteTopics(List.of(args[2])).all().get();
            System.err.println("deleted topic " + args[2]);
        } catch (ExecutionException e) {
            if (ifExists && e.getCause() instanceof UnknownTopicOrPartitionException) {
                return;
            }
            System.err.println("delete " + args[2] + " failed: " + e.getCause());
            System.exit(1);
        }
    }

    private static void usage() {
        System.err.println("usage: JavaAdmin create <bootstrap> <topic> <partitions> [--if-not-exists] [--config k=v]...\n"
                + "       JavaAdmin delete <bootstrap> <topic> [--if-exists]\n"
                + "       JavaAdmin list <bootstrap>");
        System.exit(2);
    }
}
