// Preloaded (node --import) into servers that listen on `PORT` with no way to choose the address (the npm
// @modelcontextprotocol/server-everything calls app.listen(PORT)): a listen on a port binds 127.0.0.1 only.
import net from "node:net";

const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function (...args) {
  const [first] = args;
  if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    const rest = typeof args[1] === "string" ? args.slice(2) : args.slice(1);
    return listen.call(this, Number(first), "127.0.0.1", ...rest);
  }
  if (first !== null && typeof first === "object" && first.path === undefined) {
    return listen.call(this, { ...first, host: "127.0.0.1" }, ...args.slice(1));
  }
  return listen.apply(this, args);
};
