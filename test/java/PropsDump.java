// PropsDump loads a .properties file with java.util.Properties — both ways an
// application can: load(InputStream), which reads ISO-8859-1, and
// load(Reader) with UTF-8 — and prints every entry, sorted by key, one per
// line:  base64(UTF-8 key) <tab> base64(UTF-8 value)
// A first line "SAME" or "DIFFERENT" says whether both loads agree; the
// entries printed are load(Reader)'s.
//
// With several files, each file's output follows a line "FILE <path>"; a
// file Java refuses prints "ERROR <exception class>" instead of entries.
//
// Usage: java PropsDump.java FILE...
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;

public class PropsDump {
    public static void main(String[] args) throws Exception {
        for (String f : args) {
            if (args.length > 1) {
                System.out.println("FILE " + f);
            }
            try {
                dump(f);
            } catch (IllegalArgumentException e) {
                System.out.println("ERROR " + e.getClass().getName());
            }
        }
    }

    static void dump(String f) throws IOException {
        Properties bytes = new Properties(), chars = new Properties();
        try (InputStream in = Files.newInputStream(Paths.get(f))) {
            bytes.load(in);
        }
        try (Reader r = Files.newBufferedReader(Paths.get(f), StandardCharsets.UTF_8)) {
            chars.load(r);
        }
        System.out.println(bytes.equals(chars) ? "SAME" : "DIFFERENT");
        Base64.Encoder b64 = Base64.getEncoder();
        for (String k : new TreeSet<>(chars.stringPropertyNames())) {
            System.out.println(b64.encodeToString(k.getBytes(StandardCharsets.UTF_8)) + "\t"
                + b64.encodeToString(chars.getProperty(k).getBytes(StandardCharsets.UTF_8)));
        }
    }
}
