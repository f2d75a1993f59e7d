// Package gla is gated linear attention with per-channel (vector) gates.
//
// Paper: S. Yang, B. Wang, Y. Shen, R. Panda, Y. Kim, "Gated Linear Attention Transformers with
// Hardware-Efficient Training", ICML 2024. Checked against flash-linear-attention's plain-PyTorch
// reference naive_recurrent_gla (fla/ops/gla/naive.py) through the golden vectors in testdata/gla_op.
package gla
