// JKSCheck opens JKS stores the way Cassandra does: the password is text
// (cassandra.yaml is read as UTF-8) handed to java.security.KeyStore as a
// char[] — UTF-16 code units, surrogate pairs included.
//
// Usage: java JKSCheck.java load STORE PASSWORDFILE [STORE PASSWORDFILE...]
//          prints "STORE <path>", then "KEY <alias> <algorithm> <leaf-sha256>" for
//          each key entry (the key is decrypted with the password) and
//          "CERT <alias> <sha256>" for each trusted certificate, or "FAIL <path> <error>";
//          exits 1 if any store or key cannot be read.
//        java JKSCheck.java repass IN INPASSWORD OUT PASSWORDFILE [OUT PASSWORDFILE...]
//          re-stores the JKS IN (store and key password INPASSWORD) as each OUT under
//          the password in its PASSWORDFILE, written by the JDK itself (keytool
//          refuses passwords shorter than 6 characters; the KeyStore API does not).
// Password files are UTF-8; one trailing newline is dropped, as the agent does.
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.security.*;
import java.security.cert.Certificate;
import java.util.*;

public class JKSCheck {
    public static void main(String[] args) throws Exception {
        int failed = 0;
        if (args[0].equals("load")) {
            for (int i = 1; i + 1 < args.length; i += 2) {
                System.out.println("STORE " + args[i]);
                try {
                    load(args[i], password(args[i + 1]));
                } catch (Exception e) {
                    System.out.println("FAIL " + args[i] + " " + e);
                    failed++;
                }
            }
        } else if (args[0].equals("repass")) {
            for (int i = 3; i + 1 < args.length; i += 2) {
                try {
                    repass(args[1], args[2].toCharArray(), args[i], password(args[i + 1]));
                } catch (Exception e) {
                    System.out.println("FAIL " + args[i] + " " + e);
                    failed++;
                }
            }
        } else {
            System.out.println("FAIL unknown mode " + args[0]);
            failed++;
        }
        System.exit(failed == 0 ? 0 : 1);
    }

    static char[] password(String file) throws IOException {
        String s = new String(Files.readAllBytes(Paths.get(file)), StandardCharsets.UTF_8);
        if (s.endsWith("\n")) s = s.substring(0, s.length() - 1);
        return s.toCharArray();
    }

    static void load(String path, char[] pw) throws Exception {
        KeyStore ks = KeyStore.getInstance("JKS");
        try (InputStream in = new FileInputStream(path)) { ks.load(in, pw); }
        for (String alias : Collections.list(ks.aliases())) {
            if (ks.isKeyEntry(alias)) {
                Key key = ks.getKey(alias, pw);
                System.out.println("KEY " + alias + " " + key.getAlgorithm() + " " + sha256(ks.getCertificateChain(alias)[0]));
            } else {
                System.out.println("CERT " + alias + " " + sha256(ks.getCertificate(alias)));
            }
        }
    }

    static void repass(String in, char[] inPw, String out, char[] pw) throws Exception {
        KeyStore ks = KeyStore.getInstance("JKS");
        try (InputStream r = new FileInputStream(in)) { ks.load(r, inPw); }
        for (String alias : Collections.list(ks.aliases())) {
            if (ks.isKeyEntry(alias)) {
                ks.setKeyEntry(alias, ks.getKey(alias, inPw), pw, ks.getCertificateChain(alias));
            }
        }
        try (OutputStream w = new FileOutputStream(out)) { ks.store(w, pw); }
    }

    static String sha256(Certificate c) throws Exception {
        byte[] d = MessageDigest.getInstance("SHA-256").digest(c.getEncoded());
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < d.length; i++) { if (i > 0) sb.append(':'); sb.append(String.format("%02X", d[i])); }
        return sb.toString();
    }
}
