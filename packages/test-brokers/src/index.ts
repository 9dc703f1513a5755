export * from './brokers.js';
export * from './proxy.js';
export * from './readme.js';
export * from './restart.js';
export * from './secure.js';
