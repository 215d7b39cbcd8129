// The relying party's redirect endpoint: a tiny HTTP server on a free loopback port that answers
// `GET /callback` with a small page and records every URL it was called with, as a native or local app
// would (RFC 8252 §7.3 loopback redirection).

import http from 'node:http';

export async function startCallbackServer() {
  const received = [];
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', `http://${request.headers.host}`);
    if (url.pathname === '/favicon.ico') {
      // Browsers ask every origin for one; "none" keeps their consoles free of a 404.
      response.writeHead(204).end();
      return;
    }
    if (request.method !== 'GET' || url.pathname !== '/callback') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    received.push(url.href);
    response
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
      .end('<!doctype html><title>Callback</title><p id="done">The relying party got the answer.</p>');
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const redirectUri = `http://127.0.0.1:${server.address().port}/callback`;
  const close = () => new Promise((resolve) => server.close(resolve));
  return { redirectUri, received, close };
}
