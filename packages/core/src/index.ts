export type * from './adapter.js';
export { BusImpl } from './bus.js';
export {
  assertCapability,
  assertRequirements,
  type Capabilities,
  capabilityTable,
  FEATURES,
  type Feature,
  missingCapabilities,
  type Requirements,
  type Support,
  satisfies,
} from './capabilities.js';
export { bytesCodec, type Codec, type CodecName, jsonCodec, resolveCodec, textCodec } from './codec.js';
export {
  type AdapterConfigs,
  type ConnectOptions,
  type MemoryConfigOptions,
  type OmnibusConfig,
  option,
  parseOptions,
  registerAdapter,
  SCHEMES,
  type SendBufferOptions,
} from './config.js';
export { connect } from './connect.js';
export {
  CapacityError,
  ClosedError,
  ConfigError,
  ConnectionError,
  describeError,
  type ErrorCode,
  isOmnibusError,
  type MissingCapability,
  OmnibusError,
  type OmnibusErrors,
  PublishError,
  TimeoutError,
  UnsupportedCapabilityError,
  ValidationError,
} from './errors.js';
export { applicationHeaders, HEADER, headerAttempt } from './headers.js';
export { MEMORY_CAPABILITIES, type MemoryOptions, memory } from './memory/adapter.js';
export { type MemoryBroker, memoryBroker } from './memory/broker.js';
export { OffsetTracker } from './offsets.js';
export {
  compilePattern,
  MAX_NAME_LENGTH,
  MAX_SUBJECT_LENGTH,
  matchSubject,
  type SubjectMatcher,
  validateName,
  validatePattern,
  validateSubject,
} from './routing.js';
export type { StandardSchemaV1 } from './schema.js';
export type * from './types.js';
export { type HostPort, type ParsedUrl, parseUrl, redactUrl } from './url.js';
