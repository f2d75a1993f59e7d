// Writes the non-Go fixtures of data/testdata (see README.md there): Arrow IPC stream and file from
// the Arrow JavaScript package, Parquet from DuckDB. The Go tests recompute the same rows from the
// formulas below, so change both together.
//
//   cd /tmp/fixgen && npm install apache-arrow@21.2.0 @duckdb/node-api@1.5.6-r.1
//   NODE_PATH=/tmp/fixgen/node_modules node data/testdata/make_fixtures.cjs data/testdata
const fs = require("fs");
const path = require("path");
const A = require("apache-arrow");
const { DuckDBInstance } = require("@duckdb/node-api");

const out = process.argv[2] || ".";
const EOS = 258;

function list(elem) {
  return new A.List(new A.Field("item", elem, true));
}

// hf_stream.arrow: what Hugging Face datasets writes (Arrow IPC *stream*, schema metadata
// "huggingface", several record batches), labels in HF's convention (a copy of input_ids).
function hfStream() {
  const texts = [], ids = [], masks = [], labels = [];
  for (let i = 0; i < 10; i++) {
    const text = `Row ${i}: naïve café №${i * i}`;
    const bytes = Array.from(Buffer.from(text, "utf8"));
    bytes.push(EOS);
    texts.push(text);
    ids.push(bytes);
    masks.push(bytes.map(() => 1));
    labels.push(bytes.slice());
  }
  const features = {
    text: { dtype: "string", _type: "Value" },
    input_ids: { feature: { dtype: "int32", _type: "Value" }, _type: "Sequence" },
    attention_mask: { feature: { dtype: "int8", _type: "Value" }, _type: "Sequence" },
    labels: { feature: { dtype: "int64", _type: "Value" }, _type: "Sequence" },
  };
  const meta = new Map([["huggingface", JSON.stringify({ info: { features } })]]);
  const batches = [];
  let schema;
  for (const [a, b] of [[0, 4], [4, 8], [8, 10]]) {
    const t = new A.Table({
      text: A.vectorFromArray(texts.slice(a, b), new A.Utf8()),
      input_ids: A.vectorFromArray(ids.slice(a, b), list(new A.Int32())),
      attention_mask: A.vectorFromArray(masks.slice(a, b), list(new A.Int8())),
      labels: A.vectorFromArray(labels.slice(a, b).map((r) => r.map(BigInt)), list(new A.Int64())),
    });
    schema = schema || new A.Schema(t.schema.fields, meta);
    batches.push(new A.RecordBatch(schema, t.batches[0].data));
  }
  const table = new A.Table(schema, batches);
  fs.writeFileSync(path.join(out, "hf_stream.arrow"), A.tableToIPC(table, "stream"));
}

// js_file.arrow: an Arrow IPC *file* with large_list<int64> ids and labels, a fixed_size_list<int32>
// column and a large_string column, in two record batches.
function jsFile() {
  const ids = [], labels = [], fixed = [], texts = [];
  for (let i = 0; i < 7; i++) {
    const row = [], lab = [];
    for (let j = 0; j <= i; j++) row.push(i * 11 + j);
    for (let t = 0; t < row.length; t++) lab.push(t % 2 === 0 ? -100 : (row[t] * 3) % 97);
    ids.push(row.map(BigInt));
    labels.push(lab.map(BigInt));
    fixed.push([i, i + 1, i + 2]);
    texts.push(`doc ${i}`);
  }
  const large = (elem) => new A.LargeList(new A.Field("item", elem, true));
  const part = (a, b) =>
    new A.Table({
      input_ids: A.vectorFromArray(ids.slice(a, b), large(new A.Int64())),
      labels: A.vectorFromArray(labels.slice(a, b), large(new A.Int64())),
      fixed_ids: A.vectorFromArray(fixed.slice(a, b), new A.FixedSizeList(3, new A.Field("item", new A.Int32(), true))),
      text: A.vectorFromArray(texts.slice(a, b), new A.LargeUtf8()),
    });
  const t1 = part(0, 3), t2 = part(3, 7);
  const table = new A.Table(t1.schema, [...t1.batches, ...t2.batches]);
  fs.writeFileSync(path.join(out, "js_file.arrow"), A.tableToIPC(table, "file"));
}

// duck.parquet: DuckDB's Parquet writer, INTEGER[] and BIGINT[] lists, labels, a VARCHAR column,
// 5000 rows in row groups of 2048 (DuckDB's smallest: its vector size).
async function duck() {
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  await c.run("SET threads = 1");
  const file = path.join(out, "duck.parquet").replaceAll("'", "''");
  await c.run(`COPY (
    SELECT
      list_transform(range(i % 4 + 1), lambda j: (i * 10 + j)::INTEGER) AS ids32,
      list_transform(range(i % 3 + 2), lambda j: (i + 100 * j)::BIGINT) AS ids64,
      list_transform(range(i % 4 + 1), lambda t: CASE WHEN t % 2 = 0 THEN -100 ELSE 500 + i + t END::INTEGER) AS labels,
      'dück ' || i::VARCHAR AS text
    FROM range(5000) r(i) ORDER BY i
  ) TO '${file}' (FORMAT parquet, ROW_GROUP_SIZE 2048)`);
  c.closeSync();
}

hfStream();
jsFile();
duck().catch((e) => {
  console.error(e);
  process.exit(1);
});
