package data

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// byteMessages reads the messages of an Arrow IPC stream held in memory. Bodies are slices of the
// data, not copies: arrow-go's stream reader allocates and copies every message body, which for a
// token corpus is the whole file once more. Every length is checked against the bytes that remain.
type byteMessages struct {
	data []byte
	pos  int
}

// continuation marks a message length in the IPC stream framing (since Arrow 0.15).
const continuation = 0xFFFFFFFF

// Message implements ipc.MessageReader.
func (r *byteMessages) Message() (*ipc.Message, error) {
	word := func() (uint32, error) {
		if len(r.data)-r.pos < 4 {
			return 0, fmt.Errorf("arrow/ipc: stream ends inside a message header at byte %d", r.pos)
		}
		v := binary.LittleEndian.Uint32(r.data[r.pos:])
		r.pos += 4
		return v, nil
	}
	if r.pos == len(r.data) {
		return nil, io.EOF // a stream without the end-of-stream marker
	}
	n, err := word()
	if err != nil {
		return nil, err
	}
	if n == continuation {
		if n, err = word(); err != nil {
			return nil, err
		}
	}
	if n == 0 {
		return nil, io.EOF
	}
	if n < 4 || int64(n) > int64(len(r.data)-r.pos) {
		return nil, fmt.Errorf("arrow/ipc: message metadata of %d bytes at byte %d does not fit the %d bytes left", n, r.pos, len(r.data)-r.pos)
	}
	if err := checkMessageMeta(r.data[r.pos : r.pos+int(n)]); err != nil {
		return nil, err
	}
	meta := memory.NewBufferBytes(r.data[r.pos : r.pos+int(n)])
	r.pos += int(n)
	probe := ipc.NewMessage(meta, memory.NewBufferBytes(nil))
	bodyLen := probe.BodyLen()
	probe.Release()
	if bodyLen < 0 || bodyLen > int64(len(r.data)-r.pos) {
		return nil, fmt.Errorf("arrow/ipc: message body of %d bytes at byte %d does not fit the %d bytes left", bodyLen, r.pos, len(r.data)-r.pos)
	}
	body := memory.NewBufferBytes(r.data[r.pos : r.pos+int(bodyLen)])
	r.pos += int(bodyLen)
	return ipc.NewMessage(meta, body), nil
}

// Retain implements ipc.MessageReader; the messages hold no memory of their own.
func (r *byteMessages) Retain() {}

// Release implements ipc.MessageReader.
func (r *byteMessages) Release() {}
