export type * from './adapter.js';
export { Batcher, type BatcherOptions } from './batcher.js';
export { BusImpl } from './bus.js';
export {
  ADMIN_FEATURES,
  ADMIN_NOT_YET,
  assertCapability,
  assertRequirements,
  type Capabilities,
  type CapabilityDeclaration,
  capabilityTable,
  declareCapabilities,
  FEATURE_NEEDS,
  FEATURES,
  type Feature,
  missingCapabilities,
  NO_ADMIN,
  type Requirements,
  type Support,
  satisfies,
  unsupported,
} from './capabilities.js';
export { bytesCodec, type Codec, type CodecName, jsonCodec, resolveCodec, textCodec } from './codec.js';
export {
  type AdapterConfigs,
  type ConnectOptions,
  type MemoryConfigOptions,
  type OmnibusConfig,
  type ReadOptionsExtras,
  readOptions,
  type SendBufferOptions,
} from './config.js';
export { connect } from './connect.js';
export { CONFIRMED } from './connection.js';
export { delay } from './deadlines.js';
export { BaseDelivery } from './delivery.js';
export {
  CHANNELS,
  type ConnectionMessage,
  type ConsumedMessage,
  type DestinationKind,
  type Outcome,
  type ProcessContext,
  type SendContext,
  type SettleMessage,
} from './diagnostics.js';
export {
  applicationHeaders,
  DEAD_LETTER_HEADERS,
  DEFAULT_CONTENT_TYPE,
  type Envelope,
  type EnvelopeSource,
  HEADER,
  headerAttempt,
  type NativeFields,
  RESERVED_PREFIX,
  readEnvelope,
  type ToHeadersOptions,
  toHeaders,
  unwrapBody,
  wrapBody,
} from './envelope.js';
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
export { KeyedOnce } from './keyed-once.js';
export { type Attached, Lifecycle, type LifecycleOptions, Lifecycles } from './lifecycle.js';
export { LogStart, type StartAt } from './log-start.js';
export { MEMORY_CAPABILITIES, type MemoryOptions, memory } from './memory/adapter.js';
export { type MemoryBroker, memoryBroker } from './memory/broker.js';
export { type MemoryProfile, memoryProfile, memoryProfiles, registerProfile } from './memory/profiles.js';
export { Committer, OffsetTracker } from './offsets.js';
export { type Option, type OptionSpecs, type OptionsOf, option, type ResolvedOptions } from './options.js';
export { Outstanding, Pending } from './pending.js';
export { ReadBack, type ReadBackOptions } from './read-back.js';
export { Recovery, type RecoveryOptions } from './recovery.js';
export {
  type AdapterManifest,
  installedAdapters,
  registerAdapter,
  rescanAdapters,
} from './registry.js';
export {
  compilePattern,
  DEAD_LETTER_SUFFIX,
  deadLetterName,
  MAX_NAME_LENGTH,
  MAX_SUBJECT_LENGTH,
  matchSubject,
  type SubjectMatcher,
  validateName,
  validatePattern,
  validateSubject,
} from './routing.js';
export type { StandardSchemaV1 } from './schema.js';
export { type BackoffOptions, retryWithBackoff, within, withTimeout } from './timing.js';
export {
  hasTlsOptions,
  isCertificateError,
  resolveTls,
  TLS_OPTION_NAMES,
  type TlsOptions,
  tlsOptions,
} from './tls.js';
export type * from './types.js';
export { type HostPort, type ParsedUrl, parseUrl, redactUrl } from './url.js';
