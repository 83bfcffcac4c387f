package server

import (
	"context"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the codec wrapped here
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// registerService registers impl under a copy of desc whose unary
// handlers answer a request that cannot be decoded with INVALID_ARGUMENT
// naming the problem (see namingCodec; streams: decodeErrorsStream).
func registerService(s *grpc.Server, desc *grpc.ServiceDesc, impl any) {
	d := *desc
	d.Methods = slices.Clone(desc.Methods)
	for i := range d.Methods {
		h := d.Methods[i].Handler
		d.Methods[i].Handler = func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			return h(srv, ctx, func(m any) error {
				if err := dec(m); err != nil {
					return err
				}
				return takeDecodeError(m)
			}, ic)
		}
	}
	s.RegisterService(&d, impl)
}

// decodeErrorsStream is the outermost stream interceptor: it hands a
// server stream's undecodable requests to the interceptors within (the
// validator's among them) and the handler as INVALID_ARGUMENT.
func decodeErrorsStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, decodingStream{ss})
}

type decodingStream struct {
	grpc.ServerStream
}

func (s decodingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return takeDecodeError(m)
}

// decodeErrors holds, by the request message being decoded, the error of a
// Tact request that did not decode, from the codec until the handler's
// wrapper takes it (at once: the wrapper is the codec's caller).
var decodeErrors sync.Map

func takeDecodeError(m any) error {
	if err, ok := decodeErrors.LoadAndDelete(m); ok {
		return err.(error)
	}
	return nil
}

// namingCodec is gRPC's proto codec, except for Tact's requests that do
// not decode. grpc-go answers those itself with INTERNAL (and protobuf-go
// says only "string field contains invalid UTF-8"), which tells the caller
// the server failed when it was the request, without saying where. So the
// codec keeps the error, naming the field, for the handler's wrapper
// (registerService), which answers INVALID_ARGUMENT. Requests of other
// services (health, reflection) fail as grpc-go makes them.
type namingCodec struct {
	encoding.CodecV2
}

func newNamingCodec() namingCodec {
	return namingCodec{encoding.GetCodecV2("proto")}
}

func (c namingCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok || !strings.HasPrefix(string(m.ProtoReflect().Descriptor().FullName()), "tact.") {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), "\u00a0", " ") // protobuf-go's unstable-text marker
	if strings.Contains(msg, "invalid UTF-8") {
		if name := invalidUTF8Field(data.Materialize(), m.ProtoReflect().Descriptor(), 0); name != "" {
			msg = "field " + name + " is not valid UTF-8"
		}
	}
	proto.Reset(m)
	decodeErrors.Store(v, status.Error(codes.InvalidArgument, "request: "+msg))
	return nil
}

// invalidUTF8Field returns the full name of the first string field of b (a
// message of type md, nested messages included) that is not valid UTF-8,
// or "".
func invalidUTF8Field(b []byte, md protoreflect.MessageDescriptor, depth int) string {
	if depth > 32 {
		return ""
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		if typ == protowire.BytesType && fd != nil {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return ""
			}
			b = b[n:]
			switch fd.Kind() {
			case protoreflect.StringKind:
				if !utf8.Valid(v) {
					return string(fd.FullName())
				}
			case protoreflect.MessageKind, protoreflect.GroupKind:
				if name := invalidUTF8Field(v, fd.Message(), depth+1); name != "" {
					return name
				}
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return ""
		}
		b = b[n:]
	}
	return ""
}
