// Package config loads the agent's YAML configuration file (init and
// sidecar) once, completely: ${VAR} placeholders expand from the environment
// — strictly, through the same YAML-safe renderer as templates — so one pod
// template can select per-pod material with ${POD_NAME}; the document is
// decoded strictly (unknown keys and extra documents are errors); every enum,
// duration and mode is parsed while decoding; every default is applied; and
// references and output paths are validated. A mistake is reported at
// startup, naming its key or line, and never repeats a variable's value.
package config
