// Package render fills ${VAR} and ${VAR:-default} placeholders in templates
// with values from the environment and a mounted secrets directory. It is
// strict: every placeholder must have a non-empty value, and a YAML template
// keeps its structure whatever the values contain.
package render
