// Package eval measures trained models on long contexts: passkey retrieval, RULER-style needles in a
// haystack, MQAR, copying and perplexity, over grids of context lengths x needle depths (or MQAR pair
// counts), with CSV and Markdown tables, heatmaps and accuracy-vs-length curves.
package eval
