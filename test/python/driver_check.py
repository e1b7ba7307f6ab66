"""Connects with the DataStax Python driver using the agent's PEM outputs,
verifying the server (CERT_REQUIRED, hostname checked) and presenting the
client certificate; prints the release version and the keyspaces.

Usage: driver_check.py HOST PORT PEM_DIR USERNAME PASSWORD_FILE
"""
import ssl
import sys

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster


def main():
    host, port, pem_dir, user, pw_file = sys.argv[1:6]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
    ctx.load_verify_locations(f"{pem_dir}/ca.crt")
    ctx.load_cert_chain(certfile=f"{pem_dir}/tls.crt", keyfile=f"{pem_dir}/tls.key")
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    with open(pw_file) as f:
        password = f.read().rstrip("\n")
    cluster = Cluster(
        [host], port=int(port), ssl_context=ctx, ssl_options={"server_hostname": host},
        auth_provider=PlainTextAuthProvider(username=user, password=password),
        protocol_version=4, connect_timeout=10,
    )
    session = cluster.connect()
    version = session.execute("SELECT release_version FROM system.local").one()[0]
    keyspaces = sorted(r[0] for r in session.execute("SELECT keyspace_name FROM system_schema.keyspaces"))
    print(f"release_version={version}")
    print(f"keyspaces={','.join(keyspaces)}")
    cluster.shutdown()


if __name__ == "__main__":
    main()
