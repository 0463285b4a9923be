import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";

/**
 * Writes the service worker (src/sw.ts) as `sw.js` at the root of the site (its scope is the page's folder) with the
 * list of the build's files, which it keeps for visits without a network.
 */
function serviceWorker(): Plugin {
  return {
    name: "dit-wasm-service-worker",
    apply: "build",
    generateBundle(_options, bundle) {
      const sw = bundle["sw.js"];
      if (!sw || sw.type !== "chunk") return;
      const files = Object.keys(bundle).filter((f) => f !== "sw.js" && !f.endsWith(".map"));
      // The placeholder is a string literal (whatever its quotes) holding the JSON of the list.
      sw.code = sw.code.replace(/(["'`])__DIT_APP_FILES__\1/, JSON.stringify(JSON.stringify(files)));
    },
  };
}

/** The page's fixed-name files (the web app manifest and its icons: www/demo/static), at the root of the site. */
const STATIC = fileURLToPath(new URL("static", import.meta.url));

/** Copies www/demo/static/* to the root of the build under their own names, and serves them there in the dev server. */
function staticFiles(): Plugin {
  return {
    name: "dit-wasm-static-files",
    generateBundle() {
      for (const name of fs.readdirSync(STATIC)) this.emitFile({ type: "asset", fileName: name, source: fs.readFileSync(`${STATIC}/${name}`) });
    },
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const name = new URL(req.url ?? "/", "http://x").pathname.split("/").pop() ?? "";
        if (!name || !fs.existsSync(`${STATIC}/${name}`)) return next();
        res.setHeader("content-type", name.endsWith(".svg") ? "image/svg+xml" : name.endsWith(".png") ? "image/png" : "application/json");
        res.end(fs.readFileSync(`${STATIC}/${name}`));
      });
    },
  };
}

// The embedded models (repo/models) are served and copied as static files: /demo/dit, /demo/vae.
export default defineConfig({
  base: "./",
  plugins: [staticFiles(), serviceWorker()],
  publicDir: fileURLToPath(new URL("../../models", import.meta.url)),
  // The package starts its worker with `new URL("./worker.js", import.meta.url)`: keep it out of pre-bundling.
  optimizeDeps: { exclude: ["dit-wasm"] },
  // dit-wasm is linked from ../lib (file: dependency): let the dev server read it.
  server: { port: Number(process.env.PORT ?? 5173), strictPort: true, fs: { allow: [fileURLToPath(new URL("../..", import.meta.url))] } },
  preview: { port: Number(process.env.PORT ?? 5173), strictPort: true },
  // Two pages: the demo, and the kernel benchmark (bench.html, used by `npm run bench`).
  build: {
    target: "es2022",
    rollupOptions: {
      input: {
        main: fileURLToPath(new URL("index.html", import.meta.url)),
        bench: fileURLToPath(new URL("bench.html", import.meta.url)),
        sw: fileURLToPath(new URL("src/sw.ts", import.meta.url)),
      },
      output: { entryFileNames: (chunk) => (chunk.name === "sw" ? "sw.js" : "assets/[name]-[hash].js") },
    },
  },
  // The package's worker imports the wasm-bindgen module: bundle it as an ES module worker.
  worker: { format: "es" },
});
