package checkpoints

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// Safetensors dtype names used by Engram.
const (
	F64  = "F64"
	F32  = "F32"
	BF16 = "BF16"
	I64  = "I64"
	I32  = "I32"
)

// maxHeader bounds the JSON header a reader accepts (the reference implementation's limit).
const maxHeader = 100 << 20

// metadataKey is the reserved header key holding string -> string metadata.
const metadataKey = "__metadata__"

var elementSizes = map[string]int{F64: 8, F32: 4, BF16: 2, I64: 8, I32: 4}

// Entry is one tensor of a safetensors file: Data holds its elements little-endian in row-major order.
type Entry struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

type headerEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int   `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// numElements is the product of shape, or an error on a negative dimension or overflow.
func numElements(shape []int) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d > 0 && n > math.MaxInt64/int64(d) {
			return 0, fmt.Errorf("shape %v overflows", shape)
		}
		n *= int64(d)
	}
	return n, nil
}

// WriteSafetensors writes entries and metadata (may be nil) to w in the safetensors format.
func WriteSafetensors(w io.Writer, entries []Entry, metadata map[string]string) error {
	header := map[string]any{}
	if len(metadata) > 0 {
		header[metadataKey] = metadata
	}
	ordered := append([]Entry(nil), entries...)
	// Largest elements first: with the buffer 8-aligned, every tensor then starts at a multiple of its
	// element size.
	sort.SliceStable(ordered, func(i, j int) bool {
		si, sj := elementSizes[ordered[i].DType], elementSizes[ordered[j].DType]
		if si != sj {
			return si > sj
		}
		return ordered[i].Name < ordered[j].Name
	})
	var offset int64
	for _, e := range ordered {
		size, ok := elementSizes[e.DType]
		switch {
		case e.Name == "" || e.Name == metadataKey:
			return fmt.Errorf("safetensors: invalid tensor name %q", e.Name)
		case !ok:
			return fmt.Errorf("safetensors: tensor %q: unsupported dtype %q", e.Name, e.DType)
		case header[e.Name] != nil:
			return fmt.Errorf("safetensors: tensor name %q used twice", e.Name)
		}
		n, err := numElements(e.Shape)
		if err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", e.Name, err)
		}
		if int64(len(e.Data)) != n*int64(size) {
			return fmt.Errorf("safetensors: tensor %q: %d bytes of data for shape %v of %s (want %d)", e.Name, len(e.Data), e.Shape, e.DType, n*int64(size))
		}
		shape := append(make([]int, 0, len(e.Shape)), e.Shape...) // [] rather than null for scalars
		header[e.Name] = headerEntry{DType: e.DType, Shape: shape, DataOffsets: []int64{offset, offset + int64(len(e.Data))}}
		offset += int64(len(e.Data))
	}
	body, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("safetensors header: %w", err)
	}
	if pad := (8 - (8+len(body))%8) % 8; pad > 0 {
		body = append(body, bytes.Repeat([]byte{' '}, pad)...)
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(body)))
	if _, err := w.Write(prefix[:]); err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	for _, e := range ordered {
		if _, err := w.Write(e.Data); err != nil {
			return err
		}
	}
	return nil
}

// Safetensors is a parsed safetensors file. Entries are in buffer order; their Data alias the file's bytes.
type Safetensors struct {
	Metadata map[string]string
	Entries  []Entry
	index    map[string]int
}

// Get returns the entry called name.
func (s *Safetensors) Get(name string) (Entry, bool) {
	i, ok := s.index[name]
	if !ok {
		return Entry{}, false
	}
	return s.Entries[i], true
}

// ReadSafetensors reads and checks a safetensors file.
func ReadSafetensors(file string) (*Safetensors, error) {
	body, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParseSafetensors(file, body)
}

// ParseSafetensors checks and parses a safetensors file's bytes; name labels errors.
func ParseSafetensors(name string, body []byte) (*Safetensors, error) {
	if len(body) < 8 {
		return nil, fmt.Errorf("%s: %d bytes is too short for a safetensors file (truncated?)", name, len(body))
	}
	n := binary.LittleEndian.Uint64(body[:8])
	if n > maxHeader || n > uint64(len(body)-8) {
		return nil, fmt.Errorf("%s: header length %d exceeds the file (%d bytes) or the %d-byte limit (truncated or not safetensors)", name, n, len(body), maxHeader)
	}
	header, buffer := body[8:8+n], body[8+n:]
	if len(header) == 0 || header[0] != '{' {
		return nil, fmt.Errorf("%s: header does not start with '{': not a safetensors file", name)
	}
	raw, order, err := decodeObject(header)
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", name, err)
	}
	st := &Safetensors{index: map[string]int{}}
	var begins []int64
	for _, key := range order {
		if key == metadataKey {
			if err := json.Unmarshal(raw[key], &st.Metadata); err != nil {
				return nil, fmt.Errorf("%s: %s must map strings to strings: %w", name, metadataKey, err)
			}
			continue
		}
		e, begin, err := parseEntry(key, raw[key], buffer)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", name, key, err)
		}
		st.Entries, begins = append(st.Entries, e), append(begins, begin)
	}
	if err := checkCoverage(st.Entries, begins, len(buffer)); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for i, e := range st.Entries {
		st.index[e.Name] = i
	}
	return st, nil
}

// decodeObject decodes a JSON object into its raw members, rejecting duplicate keys (which
// encoding/json would silently resolve to the last one).
func decodeObject(body []byte) (map[string]json.RawMessage, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("not a JSON object")
	}
	out := map[string]json.RawMessage{}
	var order []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		key := tok.(string) // object keys are always strings
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, nil, fmt.Errorf("key %q: %w", key, err)
		}
		if _, dup := out[key]; dup {
			return nil, nil, fmt.Errorf("key %q appears twice", key)
		}
		out[key], order = value, append(order, key)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	if rest := bytes.TrimRight(body[dec.InputOffset():], " "); len(rest) > 0 {
		return nil, nil, fmt.Errorf("unexpected bytes after the JSON object")
	}
	return out, order, nil
}

func parseEntry(name string, raw json.RawMessage, buffer []byte) (Entry, int64, error) {
	var h headerEntry
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return Entry{}, 0, err
	}
	size, ok := elementSizes[h.DType]
	if !ok {
		return Entry{}, 0, fmt.Errorf("unsupported dtype %q", h.DType)
	}
	if h.Shape == nil || len(h.DataOffsets) != 2 {
		return Entry{}, 0, fmt.Errorf("needs a shape and two data_offsets")
	}
	n, err := numElements(h.Shape)
	if err != nil {
		return Entry{}, 0, err
	}
	begin, end := h.DataOffsets[0], h.DataOffsets[1]
	if begin < 0 || end < begin || end > int64(len(buffer)) {
		return Entry{}, 0, fmt.Errorf("data_offsets [%d, %d] outside the %d-byte buffer (truncated?)", begin, end, len(buffer))
	}
	if n > math.MaxInt64/int64(size) || end-begin != n*int64(size) {
		return Entry{}, 0, fmt.Errorf("data_offsets [%d, %d] hold %d bytes, shape %v of %s needs %d", begin, end, end-begin, h.Shape, h.DType, n*int64(size))
	}
	return Entry{Name: name, DType: h.DType, Shape: h.Shape, Data: buffer[begin:end:end]}, begin, nil
}

// checkCoverage sorts entries (and their begin offsets) by offset and checks they tile the buffer
// exactly, as the format requires.
func checkCoverage(entries []Entry, begins []int64, bufferLen int) error {
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	// By start, then size: an empty tensor shares its start with the tensor after it.
	sort.SliceStable(order, func(i, j int) bool {
		a, b := order[i], order[j]
		return begins[a] < begins[b] || begins[a] == begins[b] && len(entries[a].Data) < len(entries[b].Data)
	})
	sorted := make([]Entry, len(entries))
	var next int64
	for k, i := range order {
		if begins[i] != next {
			return fmt.Errorf("tensor %q starts at byte %d of the buffer, expected %d (gap or overlap)", entries[i].Name, begins[i], next)
		}
		next += int64(len(entries[i].Data))
		sorted[k] = entries[i]
	}
	if next != int64(bufferLen) {
		return fmt.Errorf("tensors cover %d bytes of the %d-byte buffer (trailing bytes)", next, bufferLen)
	}
	copy(entries, sorted)
	return nil
}
