// Package readme holds the test that runs every command the README shows, in order, on a fresh
// directory, so the README cannot drift from the code.
package readme
