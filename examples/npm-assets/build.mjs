// Joins and minifies frontend/src/*.css into frontend/build/app.css, and
// writes frontend/build/build-info.json, which the home page reads: the page
// says the assets were built only when this script ran.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import CleanCSS from "clean-css";

const src = "frontend/src";
const out = "frontend/build";
const files = readdirSync(src).filter((f) => f.endsWith(".css")).sort();
const input = files.map((f) => readFileSync(`${src}/${f}`, "utf8")).join("\n");
const result = new CleanCSS({ level: 2 }).minify(input);
if (result.errors.length) {
  console.error(result.errors.join("\n"));
  process.exit(1);
}
mkdirSync(out, { recursive: true });
writeFileSync(`${out}/app.css`, result.styles);
writeFileSync(
  `${out}/build-info.json`,
  JSON.stringify({ builtBy: "npm run build", sources: files, bytes: result.styles.length }, null, 2) + "\n",
);
console.log(`built ${out}/app.css from ${files.length} files (${result.styles.length} bytes)`);
