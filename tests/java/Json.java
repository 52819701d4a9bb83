import java.nio.charset.StandardCharsets;
import java.util.Base64;

/** Hand-written JSON output for the interop programs (no extra jars). */
final class Json {
    private Json() {}

    /** A JSON string literal, or null. */
    static String str(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder b = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        return b.append('"').toString();
    }

    /** Bytes as a base64 JSON string (standard alphabet, padded), or null. */
    static String b64(byte[] bytes) {
        return bytes == null ? "null" : str(Base64.getEncoder().encodeToString(bytes));
    }

    /** A UTF-8 string's bytes, or null. */
    static byte[] utf8(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }
}
