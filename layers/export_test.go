package layers

import (
	"os"
	"strconv"
)

// SetCausalBlock sets the query block length of causal attention (tests cut short sequences into
// several blocks) and returns a function restoring it.
func SetCausalBlock(n int) (restore func()) {
	old := causalBlock
	causalBlock = n
	return func() { causalBlock = old }
}

func init() {
	// ATTN_BLOCK=n overrides the block length in benchmarks (to compare block lengths).
	if s := os.Getenv("ATTN_BLOCK"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			causalBlock = n
		}
	}
}
