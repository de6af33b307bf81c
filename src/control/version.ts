/**
 * The capability version we claim. Headscale v0.29.2 refuses anything below 113
 * (hscontrol/capver MinSupportedCapabilityVersion) in the Noise header, /machine/register
 * and /machine/map; tailscale v1.102.3 itself sends 142 (tailcfg.CurrentCapabilityVersion).
 * 130 is Tailscale v1.90's: inside Headscale's supported window, and every feature it
 * announces up to there concerns data-plane behaviour that the netmap consumer may ignore.
 */
export const CAPABILITY_VERSION = 130;

/** The lowest version our server accepts, mirroring Headscale v0.29.2. */
export const MIN_CAPABILITY_VERSION = 113;

/** Our IPNVersion in Hostinfo. */
export const CLIENT_VERSION = 'quackscale-0.1.0';
