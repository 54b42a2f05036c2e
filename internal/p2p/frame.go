package p2p

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Wire format. Every message on a connection, the handshake included, is
// one frame:
//
//	length  uint32, big-endian: the number of bytes that follow (1 + len(payload))
//	type    byte
//	payload length-1 bytes
//
// A frame whose payload exceeds the connection's maximum closes the
// connection before the payload is read.
const (
	frameHeaderLen = 5
	// DefaultMaxMessageBytes is the default maximum payload of one frame.
	DefaultMaxMessageBytes = 10 << 20
)

// Message types below FirstUserType belong to the transport.
const (
	typeHandshake byte = 0
	typePing      byte = 1
	// FirstUserType is the lowest message type users may register.
	FirstUserType byte = 16
)

// Framing errors.
var (
	// ErrFrameTooLarge: a frame announced a payload above the maximum.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrEmptyFrame: a frame announced length 0 (no type byte).
	ErrEmptyFrame = errors.New("empty frame")
)

// appendFrame appends the frame of (typ, payload) to dst.
func appendFrame(dst []byte, typ byte, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)+1))
	dst = append(dst, typ)
	return append(dst, payload...)
}

// encodeFrame returns a new buffer holding one frame.
func encodeFrame(typ byte, payload []byte) []byte {
	return appendFrame(make([]byte, 0, frameHeaderLen+len(payload)), typ, payload)
}

// readFrame reads one frame from r. It allocates the payload only after
// checking its announced size against maxPayload, so a peer cannot make
// it allocate more. The returned payload is owned by the caller. A
// truncated frame gives io.ErrUnexpectedEOF; a clean end before a frame,
// io.EOF.
func readFrame(r io.Reader, maxPayload int) (typ byte, payload []byte, err error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n == 0 {
		return 0, nil, ErrEmptyFrame
	}
	if uint64(n-1) > uint64(maxPayload) {
		return 0, nil, fmt.Errorf("%w: %d bytes announced, maximum %d", ErrFrameTooLarge, n-1, maxPayload)
	}
	if _, err := io.ReadFull(r, hdr[4:5]); err != nil {
		return 0, nil, noEOF(err)
	}
	payload = make([]byte, n-1)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, noEOF(err)
	}
	return hdr[4], payload, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
