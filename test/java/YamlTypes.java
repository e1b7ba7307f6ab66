// YamlTypes loads a YAML file with SnakeYAML — the library Cassandra reads
// cassandra.yaml with, through the same default implicit type resolution —
// and prints every top-level entry, one per line:
//   KEY <tab> JAVA-CLASS <tab> base64(UTF-8 of String.valueOf(value))
//
// Usage: java -cp snakeyaml.jar YamlTypes.java FILE
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;
import org.yaml.snakeyaml.Yaml;

public class YamlTypes {
    public static void main(String[] args) throws Exception {
        try (InputStream in = Files.newInputStream(Paths.get(args[0]))) {
            Map<String, Object> doc = new Yaml().load(in);
            for (Map.Entry<String, Object> e : doc.entrySet()) {
                Object v = e.getValue();
                String cls = v == null ? "null" : v.getClass().getName();
                String enc = Base64.getEncoder().encodeToString(String.valueOf(v).getBytes(StandardCharsets.UTF_8));
                System.out.println(e.getKey() + "\t" + cls + "\t" + enc);
            }
        }
    }
}
