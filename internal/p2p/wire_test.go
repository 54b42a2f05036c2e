package p2p

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

func TestFrameRoundTripAndLimits(t *testing.T) {
	var stream []byte
	msgs := []struct {
		typ     byte
		payload []byte
	}{{typePing, nil}, {msgTest, []byte("abc")}, {255, bytes.Repeat([]byte{7}, 1000)}}
	for _, m := range msgs {
		stream = appendFrame(stream, m.typ, m.payload)
	}
	r := bytes.NewReader(stream)
	for _, m := range msgs {
		typ, payload, err := readFrame(r, 1000)
		if err != nil || typ != m.typ || !bytes.Equal(payload, m.payload) {
			t.Fatalf("got %d %x %v", typ, payload, err)
		}
	}
	if _, _, err := readFrame(r, 1000); err != io.EOF {
		t.Fatalf("clean end: %v", err)
	}
	cases := map[string]struct {
		in   []byte
		want error
	}{
		"too large":        {encodeFrame(msgTest, make([]byte, 11)), ErrFrameTooLarge},
		"empty":            {[]byte{0, 0, 0, 0}, ErrEmptyFrame},
		"truncated header": {[]byte{0, 0}, io.ErrUnexpectedEOF},
		"no type":          {[]byte{0, 0, 0, 3}, io.ErrUnexpectedEOF},
		"short payload":    {[]byte{0, 0, 0, 3, 16, 1}, io.ErrUnexpectedEOF},
		"max uint32":       {[]byte{0xff, 0xff, 0xff, 0xff}, ErrFrameTooLarge},
	}
	for name, c := range cases {
		if _, _, err := readFrame(bytes.NewReader(c.in), 10); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestHelloSignatureBindsConnectionAndSide(t *testing.T) {
	key, _ := crypto.GenerateKey()
	ekm := bytes.Repeat([]byte{1}, ekmLen)
	h, err := newHello(key, 5, common.Hash{9}, sideDialer, ekm)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeHello(h.encode())
	if err != nil || back != h {
		t.Fatalf("round trip: %v", err)
	}
	if err := back.verify(sideDialer, ekm); err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte{2}, ekmLen)
	if err := back.verify(sideDialer, other); !errors.Is(err, errHello) {
		t.Fatalf("other connection: %v", err)
	}
	if err := back.verify(sideListener, ekm); !errors.Is(err, errHello) {
		t.Fatalf("reflected: %v", err)
	}
	forged := back
	forged.ChainID = 6
	if err := forged.verify(sideDialer, ekm); !errors.Is(err, errHello) {
		t.Fatalf("altered field: %v", err)
	}
	if _, err := decodeHello(h.encode()[:helloLen-1]); !errors.Is(err, errHello) {
		t.Fatal("short hello accepted")
	}
	bad := h.encode()
	bad[1] = 9
	if _, err := decodeHello(bad); !errors.Is(err, errHello) {
		t.Fatal("wrong version accepted")
	}
}

func TestBackoffIsBoundedAndJittered(t *testing.T) {
	lo, hi := 100*time.Millisecond, 30*time.Second
	for attempt := 0; attempt < 100; attempt++ {
		for _, r := range []float64{0, 0.5, 0.999} {
			d := backoffDelay(attempt, lo, hi, r)
			if d < lo/2 || d > hi {
				t.Fatalf("attempt %d r %v: %s", attempt, r, d)
			}
		}
	}
	if backoffDelay(3, lo, hi, 0) != 400*time.Millisecond || backoffDelay(3, lo, hi, 0.999) < 790*time.Millisecond {
		t.Fatal("not exponential with jitter over the upper half")
	}
	if backoffDelay(64, lo, hi, 0) != hi/2 {
		t.Fatal("cap")
	}
}

func TestTokenBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newTokenBucket(100, 10, t0) // 100 per second, burst 10
	for i := 0; i < 10; i++ {
		if w := b.reserve(t0, 1); w != 0 {
			t.Fatalf("within burst: wait %s", w)
		}
	}
	if w := b.reserve(t0, 1); w != 10*time.Millisecond {
		t.Fatalf("first over burst: %s", w)
	}
	// 100 ms later 10 tokens came back, minus the 1 owed.
	if w := b.reserve(t0.Add(100*time.Millisecond), 9); w != 0 {
		t.Fatalf("after refill: %s", w)
	}
	// A request above the burst is charged the burst.
	b2 := newTokenBucket(100, 10, t0)
	if w := b2.reserve(t0, 1000); w != 0 {
		t.Fatalf("oversized request: %s", w)
	}
	if unlimited := newTokenBucket(-1, 0, t0); unlimited.reserve(t0, 1<<30) != 0 {
		t.Fatal("unlimited bucket waits")
	}
}

// FuzzReadFrame: any byte stream gives frames or an error, never a
// panic or an allocation above the limit; what decodes re-encodes to the
// same bytes.
func FuzzReadFrame(f *testing.F) {
	f.Add(encodeFrame(msgTest, []byte("payload")))
	f.Add(append(encodeFrame(typePing, nil), encodeFrame(200, []byte{1, 2, 3})...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 16})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 16
		r := bytes.NewReader(data)
		var again []byte
		for i := 0; i <= len(data); i++ { // each frame consumes at least 5 bytes
			typ, payload, err := readFrame(r, limit)
			if err != nil {
				break
			}
			if len(payload) > limit {
				t.Fatalf("payload %d above limit", len(payload))
			}
			again = appendFrame(again, typ, payload)
		}
		if !bytes.HasPrefix(data, again) {
			t.Fatal("decoded frames do not re-encode to the input")
		}
	})
}

// FuzzDecodeHello: any payload decodes or fails cleanly; what decodes
// re-encodes to the same bytes, and verifying it never panics.
func FuzzDecodeHello(f *testing.F) {
	key, _ := crypto.HexToECDSA("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
	ekm := make([]byte, ekmLen)
	h, _ := newHello(key, 1337, common.Hash{1}, sideDialer, ekm)
	f.Add(h.encode())
	f.Add(make([]byte, helloLen))
	f.Add([]byte{0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := decodeHello(data)
		if err != nil {
			return
		}
		if !bytes.Equal(h.encode(), data) {
			t.Fatal("re-encoding differs")
		}
		_ = h.verify(sideDialer, ekm)
		_ = h.verify(sideListener, ekm)
	})
}
