package configs

import (
	"fmt"
	"reflect"
	"strings"
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
			if name == "" || name == "-" {
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
