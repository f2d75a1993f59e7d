package checkpoints_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/engramlx/engram/checkpoints"
)

// specTensor is a tensor as specRead finds it.
type specTensor struct {
	DType string
	Shape []int
	Begin int
	Data  []byte
}

// specElementSize lists every dtype of the safetensors specification with its size in bytes.
var specElementSize = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// specRead is a second reader of the format, written from its specification and sharing no code with
// the package: an 8-byte little-endian header size N, N bytes of JSON whose members are tensors
// {dtype, shape, data_offsets} plus an optional "__metadata__" of strings, then a buffer the tensors
// cover exactly. It fails the test on any violation.
func specRead(t *testing.T, file []byte) (map[string]specTensor, map[string]string, int) {
	t.Helper()
	if len(file) < 8 {
		t.Fatalf("file of %d bytes has no header size", len(file))
	}
	n := int(binary.LittleEndian.Uint64(file[:8]))
	if 8+n > len(file) {
		t.Fatalf("header size %d exceeds the file", n)
	}
	header := file[8 : 8+n]
	if header[0] != '{' {
		t.Fatalf("header starts with %q", header[0])
	}
	var members map[string]any
	if err := json.Unmarshal(header, &members); err != nil {
		t.Fatalf("header is not JSON: %v", err)
	}
	buffer := file[8+n:]
	tensors := map[string]specTensor{}
	metadata := map[string]string{}
	for name, value := range members {
		if name == "__metadata__" {
			for k, v := range value.(map[string]any) {
				s, ok := v.(string)
				if !ok {
					t.Fatalf("metadata %q is not a string", k)
				}
				metadata[k] = s
			}
			continue
		}
		fields := value.(map[string]any)
		if len(fields) != 3 {
			t.Fatalf("tensor %q has fields %v, want dtype, shape, data_offsets", name, fields)
		}
		dtype := fields["dtype"].(string)
		size, ok := specElementSize[dtype]
		if !ok {
			t.Fatalf("tensor %q: dtype %q not in the specification", name, dtype)
		}
		count := 1
		var shape []int
		for _, d := range fields["shape"].([]any) {
			shape = append(shape, int(d.(float64)))
			count *= int(d.(float64))
		}
		offsets := fields["data_offsets"].([]any)
		begin, end := int(offsets[0].(float64)), int(offsets[1].(float64))
		if end-begin != count*size || end > len(buffer) {
			t.Fatalf("tensor %q: offsets [%d, %d] for %d elements of %d bytes in a %d-byte buffer", name, begin, end, count, size, len(buffer))
		}
		tensors[name] = specTensor{DType: dtype, Shape: shape, Begin: begin, Data: buffer[begin:end]}
	}
	var spans [][2]int
	for _, x := range tensors {
		spans = append(spans, [2]int{x.Begin, x.Begin + len(x.Data)})
	}
	// By start, then end: an empty tensor shares its start with the next one.
	sort.Slice(spans, func(i, j int) bool {
		return spans[i][0] < spans[j][0] || spans[i][0] == spans[j][0] && spans[i][1] < spans[j][1]
	})
	covered := 0
	for _, s := range spans {
		if s[0] != covered {
			t.Fatalf("buffer bytes from %d: gap or overlap", covered)
		}
		covered = s[1]
	}
	if covered != len(buffer) {
		t.Fatalf("tensors cover %d of %d buffer bytes", covered, len(buffer))
	}
	return tensors, metadata, 8 + n
}

func f32Bytes(values ...float32) []byte {
	out := make([]byte, 0, 4*len(values))
	for _, v := range values {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
}

func writeFile(t *testing.T, entries []checkpoints.Entry, md map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := checkpoints.WriteSafetensors(&buf, entries, md); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The smallest file, byte for byte: header size, JSON padded with spaces to an 8-byte boundary, data.
func TestSafetensorsExactBytes(t *testing.T) {
	got := writeFile(t, []checkpoints.Entry{{Name: "a", DType: "F32", Shape: []int{2}, Data: f32Bytes(1, -2)}}, nil)
	header := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}` // 54 bytes, padded to 56
	var want bytes.Buffer
	want.Write(binary.LittleEndian.AppendUint64(nil, 56))
	want.WriteString(header + "  ")
	want.Write([]byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0})
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("got\n%q\nwant\n%q", got, want.Bytes())
	}
}

// Mixed dtypes, a scalar and an empty tensor, read back by the specification reader: same values, the
// buffer starts 8-aligned and every tensor at a multiple of its element size.
func TestSafetensorsWriterFollowsSpec(t *testing.T) {
	f64 := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.Pi)), math.Float64bits(-1e-300))
	entries := []checkpoints.Entry{
		{Name: "layer_0.bf16", DType: "BF16", Shape: []int{3}, Data: []byte{0x80, 0x3f, 0, 0xc0, 0xc0, 0x7f}},
		{Name: "layer_0.w", DType: "F32", Shape: []int{2, 3}, Data: f32Bytes(1, 2, 3, 4, 5, 6.5)},
		{Name: "pos", DType: "I32", Shape: []int{}, Data: []byte{7, 0, 0, 0}},
		{Name: "empty", DType: "F32", Shape: []int{0, 4}, Data: nil},
		{Name: "big", DType: "F64", Shape: []int{2}, Data: f64},
		{Name: "step", DType: "I64", Shape: []int{1}, Data: []byte{9, 0, 0, 0, 0, 0, 0, 0}},
	}
	md := map[string]string{"format": "test", "note": "ünïcode"}
	file := writeFile(t, entries, md)
	tensors, gotMD, bufferStart := specRead(t, file)
	if bufferStart%8 != 0 {
		t.Errorf("buffer starts at byte %d, not 8-aligned", bufferStart)
	}
	if fmt.Sprint(gotMD) != fmt.Sprint(md) {
		t.Errorf("metadata %v, want %v", gotMD, md)
	}
	if len(tensors) != len(entries) {
		t.Fatalf("read %d tensors, wrote %d", len(tensors), len(entries))
	}
	for _, e := range entries {
		got := tensors[e.Name]
		if got.DType != e.DType || fmt.Sprint(got.Shape) != fmt.Sprint(e.Shape) || !bytes.Equal(got.Data, e.Data) {
			t.Errorf("%s: read %s %v %x, wrote %s %v %x", e.Name, got.DType, got.Shape, got.Data, e.DType, e.Shape, e.Data)
		}
		if got.Begin%specElementSize[e.DType] != 0 {
			t.Errorf("%s (%s) starts at buffer byte %d: not aligned to its element size", e.Name, e.DType, got.Begin)
		}
	}
	// And our own reader agrees.
	st, err := checkpoints.ParseSafetensors("mem", file)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		got, ok := st.Get(e.Name)
		if !ok || got.DType != e.DType || fmt.Sprint(got.Shape) != fmt.Sprint(e.Shape) || !bytes.Equal(got.Data, e.Data) {
			t.Errorf("ParseSafetensors %s: %+v", e.Name, got)
		}
	}
}

func TestSafetensorsWriterRejectsBadEntries(t *testing.T) {
	for _, c := range []struct {
		entries []checkpoints.Entry
		want    string
	}{
		{[]checkpoints.Entry{{Name: "x", DType: "F32", Shape: []int{3}, Data: f32Bytes(1, 2)}}, "8 bytes of data for shape [3]"},
		{[]checkpoints.Entry{{Name: "x", DType: "F17", Shape: []int{1}, Data: f32Bytes(1)}}, "unsupported dtype"},
		{[]checkpoints.Entry{{Name: "x", DType: "F32", Shape: []int{1}, Data: f32Bytes(1)}, {Name: "x", DType: "F32", Shape: []int{1}, Data: f32Bytes(1)}}, "used twice"},
		{[]checkpoints.Entry{{Name: "__metadata__", DType: "F32", Shape: []int{1}, Data: f32Bytes(1)}}, "invalid tensor name"},
	} {
		err := checkpoints.WriteSafetensors(&bytes.Buffer{}, c.entries, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error containing %q", err, c.want)
		}
	}
}

// An empty tensor may be listed after the tensor that starts where it does.
func TestSafetensorsReaderAcceptsEmptyTensors(t *testing.T) {
	header := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"z":{"dtype":"I32","shape":[0,3],"data_offsets":[8,8]}}`
	file := append(append(binary.LittleEndian.AppendUint64(nil, uint64(len(header))), header...), f32Bytes(1, 2)...)
	st, err := checkpoints.ParseSafetensors("empty.safetensors", file)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := st.Get("e"); !ok || len(e.Data) != 0 || len(st.Entries) != 3 {
		t.Fatalf("entries %+v", st.Entries)
	}
}

// Every damaged file is an error naming it; no prefix of a valid file parses, and none panics.
func TestSafetensorsReaderRejectsBadFiles(t *testing.T) {
	valid := writeFile(t, []checkpoints.Entry{
		{Name: "a", DType: "F32", Shape: []int{2}, Data: f32Bytes(1, 2)},
		{Name: "b", DType: "I32", Shape: []int{1}, Data: []byte{1, 0, 0, 0}},
	}, map[string]string{"k": "v"})
	for cut := 0; cut < len(valid); cut++ {
		if _, err := checkpoints.ParseSafetensors("cut.safetensors", valid[:cut]); err == nil || !strings.Contains(err.Error(), "cut.safetensors") {
			t.Fatalf("file cut to %d of %d bytes: got %v, want an error naming the file", cut, len(valid), err)
		}
	}
	build := func(header string, buffer []byte) []byte {
		return append(append(binary.LittleEndian.AppendUint64(nil, uint64(len(header))), header...), buffer...)
	}
	data := f32Bytes(1, 2)
	for _, c := range []struct{ name, header, want string }{
		{"not json", `[1, 2]`, "does not start with '{'"},
		{"duplicate", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, "appears twice"},
		{"overlap", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, "gap or overlap"},
		{"gap", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, "gap or overlap"},
		{"trailing", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, "trailing bytes"},
		{"shape mismatch", `{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, "needs 12"},
		{"bad dtype", `{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}`, "unsupported dtype"},
		{"negative dim", `{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, "negative dimension"},
		{"overflow", `{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}`, "overflows"},
		{"past end", `{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, "outside the 8-byte buffer"},
		{"extra field", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}`, "unknown field"},
		{"metadata not strings", `{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, "strings to strings"},
		{"garbage after object", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} x`, "after the JSON object"},
	} {
		_, err := checkpoints.ParseSafetensors("bad.safetensors", build(c.header, data))
		if err == nil || !strings.Contains(err.Error(), "bad.safetensors") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming the file and saying %q", c.name, err, c.want)
		}
	}
	huge := binary.LittleEndian.AppendUint64(nil, 1<<40)
	if _, err := checkpoints.ParseSafetensors("huge.safetensors", append(huge, '{', '}')); err == nil || !strings.Contains(err.Error(), "header length") {
		t.Errorf("huge header length: got %v", err)
	}
}
