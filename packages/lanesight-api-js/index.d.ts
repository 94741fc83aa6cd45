import type { GrpcObject } from '@grpc/grpc-js';
import type { Options } from '@grpc/proto-loader';

/** The loaded protos: lanesight.v1's services and messages, and grpc.health.v1. */
export interface LanesightApi {
  lanesight: GrpcObject;
  health: GrpcObject;
  grpc: GrpcObject;
}

/** Load lanesight's protos for @grpc/grpc-js (keepCase, longs as strings, enums as names). */
export function load(options?: Options): LanesightApi;
/** The folder holding the .proto files (for other tools, e.g. buf or protoc). */
export const PROTO_DIR: string;
/** The .proto files load() reads, relative to PROTO_DIR. */
export const FILES: string[];
