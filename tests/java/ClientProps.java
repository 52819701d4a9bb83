import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/**
 * Extra client properties for the interop programs: when the environment
 * variable {@code SKOTCH_JAVA_CLIENT_PROPS} names a properties file, its
 * entries (for example {@code security.protocol}, {@code sasl.mechanism},
 * {@code sasl.jaas.config}, {@code ssl.truststore.*}) are added to the
 * client's properties. Lets the same programs talk to the secured listeners.
 */
final class ClientProps {
    private ClientProps() {}

    static void addFromEnv(Properties props) {
        String path = System.getenv("SKOTCH_JAVA_CLIENT_PROPS");
        if (path == null || path.isEmpty()) {
            return;
        }
        Properties extra = new Properties();
        try (InputStream in = new FileInputStream(path)) {
            extra.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException("reading SKOTCH_JAVA_CLIENT_PROPS " + path, e);
        }
        props.putAll(extra);
    }
}
