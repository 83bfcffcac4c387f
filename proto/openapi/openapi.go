// Package openapi embeds the OpenAPI (Swagger 2.0) document of Tact's REST
// API, generated from proto/tact/v1 by protoc-gen-openapiv2.
package openapi

import _ "embed"

// JSON is the OpenAPI document.
//
//go:embed tact.swagger.json
var JSON []byte
