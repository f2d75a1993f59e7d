package configs

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/engramlx/engram/model"
)

// Diff lists the fields that differ between a and b (structs of the same type) as
// "prefix.yaml_key: old -> new", using the yaml names of the fields.
func Diff(a, b any, prefix string) []string {
	var out []string
	diffValues(reflect.ValueOf(a), reflect.ValueOf(b), prefix, &out)
	return out
}

func diffValues(a, b reflect.Value, path string, out *[]string) {
	if a.Kind() == reflect.Struct {
		for i := 0; i < a.NumField(); i++ {
			field := a.Type().Field(i)
			if !field.IsExported() {
				continue
			}
			name := strings.Split(field.Tag.Get("yaml"), ",")[0]
			if name == "-" {
				continue // derived, not a setting (e.g. deltanet's gate from the layer type)
			}
			if name == "" {
				name = strings.ToLower(field.Name)
			}
			diffValues(a.Field(i), b.Field(i), path+"."+name, out)
		}
		return
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		*out = append(*out, fmt.Sprintf("%s: %v -> %v", path, a.Interface(), b.Interface()))
	}
}

// DiffModels lists the settings that differ between two model configs, counting only the sections
// both stacks use: when the layer types differ, that difference is listed, not the sections one side
// does not have (which would read "sliding_window.heads: 0 -> 4").
func DiffModels(a, b model.Config) []string {
	a, b = a.InUse(), b.InUse()
	va, vb := reflect.ValueOf(&a).Elem(), reflect.ValueOf(&b).Elem()
	for i := 0; i < va.NumField(); i++ {
		fa, fb := va.Field(i), vb.Field(i)
		if fa.Kind() == reflect.Struct && (fa.IsZero() || fb.IsZero()) {
			fa.Set(reflect.Zero(fa.Type()))
			fb.Set(reflect.Zero(fb.Type()))
		}
	}
	return Diff(a, b, "model")
}
