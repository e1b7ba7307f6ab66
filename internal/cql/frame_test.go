package cql

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/pki/pkitest"
)

// hugeFrameServer answers the client's first frame with a response header
// announcing a 2 GiB body, then sends nothing more: a hostile or broken
// peer. The client must neither allocate the body nor wait past its timeout.
func hugeFrameServer(t *testing.T) string {
	t.Helper()
	return pkitest.ServeTCP(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		hdr := make([]byte, 9) // protocol v3+: version, flags, stream (2), opcode, length (4)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(hdr[5:9]))); err != nil {
			return
		}
		resp := []byte{hdr[0] | 0x80, 0, hdr[2], hdr[3], 0x02 /* READY */, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(resp[5:], 0x7FFFFFFF)
		c.Write(resp)
		io.Copy(io.Discard, c) // hold the connection open, send no body
	})
}

func TestProbeRefusesAHugeFrame(t *testing.T) {
	addr := hugeFrameServer(t)
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	c := &Client{ConnectTimeout: 2 * time.Second, Timeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Probe(ctx, addr)
	took := time.Since(start)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a 2 GiB frame was taken for an answer")
	}
	if took > 5*time.Second {
		t.Errorf("the probe took %v with a 3 s deadline", took)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<20 {
		t.Errorf("the probe allocated %d MiB for a frame it should refuse", grew>>20)
	}
	if strings.TrimSpace(err.Error()) == "" {
		t.Errorf("no cause given")
	}
	t.Logf("%v after %v", err, took.Round(time.Millisecond))
}
