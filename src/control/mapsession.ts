/**
 * One /machine/map request (controlclient/direct.go sendMapRequest): a streaming long poll
 * that yields decoded MapResponses until the server ends it, with a watchdog that gives up
 * when nothing (not even a keepalive) arrives for two minutes; or a non-streaming "lite"
 * update (Stream=false, OmitPeers=true) that only sends our endpoints and Hostinfo.
 */
import { decodeMapResponse } from './decode.js';
import {
  ControlError,
  NodeExpiredError,
  NotLoggedInError,
  ProtocolError,
  ServerUnreachableError,
} from './errors.js';
import { MapMessageReader, messageText } from './mapstream.js';
import type { Hostinfo, MapRequest, MapResponse } from './tailcfg.js';
import { readBody, type Ts2021Transport } from './transport.js';

/** Go's watchdogTimeout; Headscale sends a keepalive every 50–59 s. */
export const MAP_WATCHDOG_MS = 120_000;

export interface MapRequestParams {
  capVersion: number;
  nodeKey: string;
  discoKey: string;
  hostinfo: Hostinfo;
  endpoints: readonly string[];
  /** tailcfg.EndpointType per endpoint; 1 = local. */
  endpointTypes?: readonly number[];
}

/** Builds the MapRequest JSON. We never ask for compression (see zstd.ts). */
export function mapRequest(p: MapRequestParams, stream: boolean): MapRequest {
  const req: MapRequest = {
    Version: p.capVersion,
    KeepAlive: true,
    NodeKey: p.nodeKey,
    DiscoKey: p.discoKey,
    Stream: stream,
    Hostinfo: p.hostinfo,
  };
  if (p.endpoints.length > 0) {
    req.Endpoints = [...p.endpoints];
    req.EndpointTypes = p.endpointTypes ? [...p.endpointTypes] : p.endpoints.map(() => 1);
  }
  if (!stream) req.OmitPeers = true;
  return req;
}

function statusError(serverURL: string, status: number, body: string): Error {
  const text = body.trim().slice(0, 200);
  if (status === 404)
    return new NotLoggedInError(`${serverURL} does not know this node (${text}); log in again`);
  if (status === 401 || status === 403) {
    return /expired/i.test(text)
      ? new NodeExpiredError(serverURL)
      : new NotLoggedInError(`${serverURL}: ${text}`);
  }
  if (status >= 500)
    return new ServerUnreachableError(serverURL, `map request answered HTTP ${status}: ${text}`);
  return new ProtocolError(`map request to ${serverURL} answered HTTP ${status}: ${text}`);
}

/**
 * Streams the map: `onMessage` gets every message (keepalives included) in order. Resolves
 * when the server ends the stream; rejects on errors, the watchdog, or abort.
 */
export async function streamMap(
  transport: Ts2021Transport,
  params: MapRequestParams,
  onMessage: (resp: MapResponse, bytes: number) => void,
  signal: AbortSignal,
  watchdogMs = MAP_WATCHDOG_MS,
): Promise<void> {
  const serverURL = transport.opts.serverURL;
  const res = await transport.request('POST', '/machine/map', mapRequest(params, true), signal);
  if (res.status !== 200) throw statusError(serverURL, res.status, await readBody(res.stream, 64 << 10));
  const reader = new MapMessageReader();
  await new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        res.stream.destroy(
          new ServerUnreachableError(serverURL, `no map message for ${watchdogMs / 1000} s`),
        );
      }, watchdogMs);
    };
    arm();
    res.stream.on('data', (chunk: Buffer) => {
      arm();
      try {
        for (const body of reader.push(chunk)) onMessage(decodeMapResponse(messageText(body)), body.length);
      } catch (err) {
        res.stream.destroy(err as Error);
      }
    });
    res.stream.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
    res.stream.once('error', (err) => {
      clearTimeout(timer);
      if (err instanceof ControlError || err.name === 'AbortError') reject(err);
      else reject(new ServerUnreachableError(serverURL, `map stream: ${err.message}`, { cause: err }));
    });
    res.stream.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    res.stream.resume();
  });
}

/** Sends endpoints and Hostinfo without opening a stream (OmitPeers, Stream=false). */
export async function sendMapUpdate(transport: Ts2021Transport, params: MapRequestParams): Promise<void> {
  const res = await transport.request('POST', '/machine/map', mapRequest(params, false));
  const body = await readBody(res.stream, 4 << 20);
  if (res.status !== 200) throw statusError(transport.opts.serverURL, res.status, body);
}
