// Conductor's routes (nginx/route.go): which release of an app nginx
// sends a request to. Each app's server block names its route file in
// $conductor_route; a deploy switches traffic by renaming a new file into
// place, so nginx needs no reload, which would end kept-alive client
// connections. njs runs every request in its own VM, so `routes` caches
// the file for one request only: the file is read once per request.
var fs = require('fs');
var routes = {};

function read(r) {
    var path = r.variables.conductor_route;
    if (!path) {
        return {};
    }
    try {
        return JSON.parse(fs.readFileSync(path, 'utf8'));
    } catch (e) {
        r.error('conductor: cannot read the route ' + path + ': ' + e.message);
        return {};
    }
}

function route(r) {
    var path = r.variables.conductor_route;
    if (!(path in routes)) {
        routes[path] = read(r);
    }
    return routes[path];
}

// A missing route answers 502: port 1 on loopback refuses.
function upstream(r) { return route(r).upstream || '127.0.0.1:1'; }
function release(r) { return route(r).release || ''; }
function staticdir(r) { return route(r).static || '/nonexistent/'; }

// The route as it is now, for a request sent again (@conductor_reroute).
function upstreamNow(r) { return read(r).upstream || '127.0.0.1:1'; }

export default { upstream, release, staticdir, upstreamNow };
