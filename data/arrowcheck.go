package data

import (
	"encoding/binary"
	"fmt"

	flatbuffers "github.com/google/flatbuffers/go"
)

// arrow-go (v18.8.0) turns a schema's flatbuffer into Go values trusting its counts: it allocates
// make([]arrow.Field, n) for n read from the file and recurses into field children without a depth
// limit. A corrupt count asks for hundreds of gigabytes and a child pointing back at its parent
// recurses forever; both end the process (out of memory, stack overflow), which no recover catches.
// These checks run first and bound every such count by the bytes that could hold it.

// Vtable offsets of the Arrow flatbuffer fields we check (Schema.fbs, Message.fbs, File.fbs).
const (
	vtMessageHeaderType = 6  // Message.header_type
	vtMessageHeader     = 8  // Message.header
	vtSchemaFields      = 6  // Schema.fields
	vtSchemaMetadata    = 8  // Schema.custom_metadata
	vtFieldChildren     = 14 // Field.children
	vtFieldMetadata     = 16 // Field.custom_metadata
	vtFooterSchema      = 6  // Footer.schema

	messageHeaderSchema = 1 // MessageHeader.Schema

	maxFieldDepth = 64     // nesting deeper than this is refused (lists of lists of ... )
	maxFieldCount = 100000 // fields in one schema, children included
)

type schemaCheck struct {
	buf    []byte
	fields int
}

// vectorLen returns the length of the vector at vtable offset vt of tab, refusing one whose
// elements (4-byte offsets) would run past the buffer.
func (c *schemaCheck) vectorLen(tab *flatbuffers.Table, vt flatbuffers.VOffsetT, what string) (int, error) {
	o := flatbuffers.UOffsetT(tab.Offset(vt))
	if o == 0 {
		return 0, nil
	}
	start, n := int64(tab.Vector(o)), int64(tab.VectorLen(o))
	if start < 0 || n < 0 || start+4*n > int64(len(c.buf)) {
		return 0, fmt.Errorf("arrow metadata: %s claims %d entries, more than its %d bytes can hold", what, n, len(c.buf))
	}
	return int(n), nil
}

// field checks a Field table and its children.
func (c *schemaCheck) field(tab *flatbuffers.Table, depth int) error {
	c.fields++
	if depth > maxFieldDepth || c.fields > maxFieldCount {
		return fmt.Errorf("arrow metadata: fields nest deeper than %d or number more than %d", maxFieldDepth, maxFieldCount)
	}
	if _, err := c.vectorLen(tab, vtFieldMetadata, "a field's custom metadata"); err != nil {
		return err
	}
	n, err := c.vectorLen(tab, vtFieldChildren, "a field's children")
	if err != nil {
		return err
	}
	return c.tables(tab, vtFieldChildren, n, depth+1)
}

// tables checks the n Field tables of the vector at vt.
func (c *schemaCheck) tables(tab *flatbuffers.Table, vt flatbuffers.VOffsetT, n, depth int) error {
	if n == 0 {
		return nil
	}
	at := tab.Vector(flatbuffers.UOffsetT(tab.Offset(vt)))
	for i := 0; i < n; i++ {
		child := &flatbuffers.Table{Bytes: c.buf, Pos: tab.Indirect(at + flatbuffers.UOffsetT(4*i))}
		if err := c.field(child, depth); err != nil {
			return err
		}
	}
	return nil
}

// schema checks a Schema table.
func (c *schemaCheck) schema(tab *flatbuffers.Table) error {
	if _, err := c.vectorLen(tab, vtSchemaMetadata, "the schema's custom metadata"); err != nil {
		return err
	}
	n, err := c.vectorLen(tab, vtSchemaFields, "the schema's fields")
	if err != nil {
		return err
	}
	return c.tables(tab, vtSchemaFields, n, 1)
}

// checkMessageMeta checks the metadata flatbuffer of one IPC message (a schema message is walked).
// Malformed offsets may panic; callers run under readBytes' recover.
func checkMessageMeta(meta []byte) error {
	if len(meta) < 4 {
		return fmt.Errorf("arrow metadata: %d bytes", len(meta))
	}
	msg := &flatbuffers.Table{Bytes: meta, Pos: flatbuffers.GetUOffsetT(meta)}
	if o := msg.Offset(vtMessageHeaderType); o == 0 || msg.GetByte(flatbuffers.UOffsetT(o)+msg.Pos) != messageHeaderSchema {
		return nil
	}
	o := msg.Offset(vtMessageHeader)
	if o == 0 {
		return nil
	}
	var header flatbuffers.Table
	msg.Union(&header, flatbuffers.UOffsetT(o))
	return (&schemaCheck{buf: meta}).schema(&header)
}

// checkFileFooter checks the schema in the footer of an Arrow IPC file ("ARROW1" at both ends).
func checkFileFooter(data []byte) error {
	const tail = 4 + 6 // footer length, "ARROW1"
	if len(data) < 8+tail {
		return nil // too short: arrow-go refuses it without allocating
	}
	size := int64(binary.LittleEndian.Uint32(data[len(data)-tail:]))
	if size < 4 || size > int64(len(data)-8-tail) {
		return nil // inconsistent: arrow-go refuses it
	}
	footer := data[int64(len(data)-tail)-size : len(data)-tail]
	tab := &flatbuffers.Table{Bytes: footer, Pos: flatbuffers.GetUOffsetT(footer)}
	o := flatbuffers.UOffsetT(tab.Offset(vtFooterSchema))
	if o == 0 {
		return nil
	}
	schema := &flatbuffers.Table{Bytes: footer, Pos: tab.Indirect(o + tab.Pos)}
	return (&schemaCheck{buf: footer}).schema(schema)
}
