import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeProducersResult.PartitionProducerState;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;

/**
 * The broker's producer state for a topic's partitions, with the Java
 * AdminClient's {@code describeProducers} (KIP-664, DescribeProducers API):
 * which producer ids wrote to each partition and the last sequence the
 * partition leader accepted from each.
 *
 * <p>Usage: {@code DescribeProducers <bootstrap> <topic>}
 *
 * <p>Asks every partition of the topic (found with describeTopics) and
 * prints one JSON line per active producer of each partition, partitions in
 * order, producers by id:
 * <pre>
 * {"partition":0,"producerId":1000,"producerEpoch":0,"lastSequence":1234,
 *  "lastTimestamp":1700000000000,"coordinatorEpoch":null,"currentTransactionStartOffset":null}
 * </pre>
 * {@code coordinatorEpoch} and {@code currentTransactionStartOffset} are null
 * when the broker reports none (no transaction open). A partition without
 * active producers prints nothing. Exit code 0 on success, 1 on error, 2 on
 * bad usage.
 */
public final class DescribeProducers {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: DescribeProducers <bootstrap> <topic>");
            System.exit(2);
        }
        String topic = args[1];
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "skotch-java-describe-producers");
        ClientProps.addFromEnv(props);
        try (Admin admin = Admin.create(props)) {
            TopicDescription description = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            List<TopicPartition> partitions = new ArrayList<>();
            for (TopicPartitionInfo info : description.partitions()) {
                partitions.add(new TopicPartition(topic, info.partition()));
            }
            partitions.sort(Comparator.comparingInt(TopicPartition::partition));
            Map<TopicPartition, PartitionProducerState> states = admin.describeProducers(partitions).all().get();
            StringBuilder out = new StringBuilder();
            for (TopicPartition tp : partitions) {
                List<ProducerState> producers = new ArrayList<>(states.get(tp).activeProducers());
                producers.sort(Comparator.comparingLong(ProducerState::producerId));
                for (ProducerState p : producers) {
                    out.append("{\"partition\":").append(tp.partition())
                            .append(",\"producerId\":").append(p.producerId())
                            .append(",\"producerEpoch\":").append(p.producerEpoch())
                            .append(",\"lastSequence\":").append(p.lastSequence())
                            .append(",\"lastTimestamp\":").append(p.lastTimestamp())
                            .append(",\"coordinatorEpoch\":")
                            .append(p.coordinatorEpoch().isPresent() ? String.valueOf(p.coordinatorEpoch().getAsInt()) : "null")
                            .append(",\"currentTransactionStartOffset\":")
                            .append(p.currentTransactionStartOffset().isPresent()
                                    ? String.valueOf(p.currentTransactionStartOffset().getAsLong()) : "null")
                            .append("}\n");
                }
            }
            System.out.print(out);
            System.out.flush();
        } catch (ExecutionException e) {
            System.err.println("describeProducers " + topic + " failed: " + e.getCause());
            System.exit(1);
        }
    }
}
