export type { UnitState, UnitTransition, UnitChange, UnitWatcher } from "./types.js";
export { createUnitWatcher, SystemdUnitWatcher, type UnitWatcherOptions, type WatcherLogger } from "./watcher.js";
export {
  BusUnavailableError,
  BusDisconnectedError,
  DBusCallTimeoutError,
  DBusMethodError,
  InvalidBusAddressError,
  WatcherStoppedError,
} from "./errors.js";
export { classifyTransition } from "./transition.js";
export { isCleanStop, isFailed, isNewInvocation, isRunning, needsConfirmation, restartedBetweenLooks } from "./facts.js";
export { resolveBusAddress } from "./connection.js";
export { busLabelEscape, unitObjectPath, isValidUnitName } from "./unit-path.js";
