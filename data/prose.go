package data

import (
	"math/rand/v2"
	"strconv"
	"strings"
)

// Word lists of randomProse. Small on purpose: the point is a haystack that does not repeat with a
// short period and that shares words and sentence shapes with the needles ("... is ...", numbers),
// not natural language.
var (
	proseNouns      = []string{"grass", "sky", "sun", "river", "house", "garden", "city", "road", "tree", "cat", "dog", "bird", "lamp", "book", "door", "window", "train", "boat", "hill", "market", "teacher", "farmer", "child", "song", "letter", "bridge", "cloud", "stone", "key", "box"}
	proseAdjectives = []string{"green", "blue", "yellow", "red", "old", "new", "quiet", "loud", "small", "large", "bright", "dark", "warm", "cold", "empty", "full", "far", "near", "open", "closed"}
	proseVerbs      = []string{"walked to", "looked at", "found", "painted", "waited near", "talked about", "remembered", "carried", "passed", "watched"}
	proseNames      = []string{"Anna", "Ben", "Clara", "David", "Ella", "Frank", "Grace", "Hugo", "Iris", "Jonas"}
	proseFixed      = []string{"Here we go.", "There and back again.", "Nothing happened for a while.", "It was a long day.", "Everyone went home."}
)

// randomProse returns at least n bytes of random sentences separated by single spaces, ending in a
// space: "The <noun> is <adjective>.", "<Name> <verb> the <adjective> <noun>.", "There are <number>
// <noun>s.", "The <noun> is number <number>." and a few fixed sentences. Numbers have 1 to 4 digits,
// so a 5-digit pass key stays the only number of its length.
func randomProse(rng *rand.Rand, n int) string {
	pick := func(words []string) string { return words[rng.IntN(len(words))] }
	number := func() string { return strconv.Itoa(rng.IntN(10000)) }
	var b strings.Builder
	b.Grow(n + 64)
	for b.Len() < n {
		switch rng.IntN(6) {
		case 0, 1:
			b.WriteString("The " + pick(proseNouns) + " is " + pick(proseAdjectives) + ". ")
		case 2:
			b.WriteString(pick(proseNames) + " " + pick(proseVerbs) + " the " + pick(proseAdjectives) + " " + pick(proseNouns) + ". ")
		case 3:
			b.WriteString("There are " + number() + " " + pick(proseNouns) + "s. ")
		case 4:
			b.WriteString("The " + pick(proseNouns) + " is number " + number() + ". ")
		default:
			b.WriteString(pick(proseFixed) + " ")
		}
	}
	return b.String()
}
