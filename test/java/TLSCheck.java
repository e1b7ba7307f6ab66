// TLSCheck loads a keystore and a truststore the way Cassandra does
// (KeyManagerFactory + TrustManagerFactory from java.security.KeyStore) and
// completes a mutual-TLS handshake against a server, printing the SHA-256
// fingerprint of the certificate the server presented.
//
// Usage: java TLSCheck.java CASE...   where CASE is
//   host:port,storetype,keystore,truststore,passwordfile
// Prints "OK <host:port> <server-leaf-sha256>" per case; exits 1 on the first failure.
import java.io.*;
import java.nio.file.*;
import java.security.*;
import java.security.cert.*;
import javax.net.ssl.*;

public class TLSCheck {
    public static void main(String[] args) throws Exception {
        int failed = 0;
        for (String c : args) {
            String[] p = c.split(",");
            try {
                System.out.println("OK " + p[0] + " " + check(p[0], p[1], p[2], p[3], p[4]));
            } catch (Exception e) {
                System.out.println("FAIL " + p[0] + " " + e);
                failed++;
            }
        }
        System.exit(failed == 0 ? 0 : 1);
    }

    static String check(String addr, String type, String ks, String ts, String pwFile) throws Exception {
        // UTF-8, whatever the locale: Cassandra reads cassandra.yaml as UTF-8.
        char[] pw = new String(Files.readAllBytes(Paths.get(pwFile)), java.nio.charset.StandardCharsets.UTF_8).trim().toCharArray();
        KeyStore keystore = KeyStore.getInstance(type);
        try (InputStream in = new FileInputStream(ks)) { keystore.load(in, pw); }
        KeyStore truststore = KeyStore.getInstance(type);
        try (InputStream in = new FileInputStream(ts)) { truststore.load(in, pw); }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keystore, pw);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(truststore);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        String[] hp = addr.split(":");
        try (SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(hp[0], Integer.parseInt(hp[1]))) {
            SSLParameters params = s.getSSLParameters();
            params.setEndpointIdentificationAlgorithm("HTTPS"); // verify the server name like a careful client
            s.setSSLParameters(params);
            s.startHandshake();
            s.getOutputStream().write('x');
            s.getOutputStream().flush();
            if (s.getInputStream().read() != 'y') throw new IOException("server did not answer");
            java.security.cert.Certificate leaf = s.getSession().getPeerCertificates()[0];
            byte[] d = MessageDigest.getInstance("SHA-256").digest(leaf.getEncoded());
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < d.length; i++) { if (i > 0) sb.append(':'); sb.append(String.format("%02X", d[i])); }
            return sb.toString();
        }
    }
}
