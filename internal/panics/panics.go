// Package panics turns a recovered panic into an error that keeps its chain: GoMLX reports graph-building
// mistakes by panicking (often with an error value), and the one recover at each boundary between
// graph building and Engram's error returns goes through AsError, so errors.Is / errors.As still see the
// original error.
package panics

import "fmt"

// AsError is p as an error: p itself (wrapped, so the chain is kept) when it is one, its printed value
// otherwise; nil for nil.
func AsError(p any) error {
	switch v := p.(type) {
	case nil:
		return nil
	case error:
		return fmt.Errorf("%w", v)
	default:
		return fmt.Errorf("%v", v)
	}
}
