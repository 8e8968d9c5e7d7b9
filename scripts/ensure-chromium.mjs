// Before the browser suite: the system's Chromium (CHROMIUM_PATH, else /usr/bin/chromium). Missing, it is
// installed from Debian's packages when this runs as root with apt-get; otherwise the suite does not start,
// with one line saying how to install it.
import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"

const path = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"
const canApt = () => {
  try {
    execFileSync("apt-get", ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

if (!existsSync(path)) {
  const root = process.getuid?.() === 0
  if (root && canApt() && process.env["CHROMIUM_PATH"] === undefined) {
    console.error("Chromium is missing: installing the Debian package chromium (apt-get install chromium)")
    try {
      execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit" })
      execFileSync("apt-get", ["install", "-y", "-qq", "chromium"], { stdio: "inherit" })
    } catch {
      console.error("could not install Chromium: run `apt-get install chromium` as root, then the tests again")
      process.exit(1)
    }
  }
  if (!existsSync(path)) {
    console.error(
      `the browser tests need Chromium at ${path}: install it (Debian: \`sudo apt-get install chromium\`) ` +
        "or set CHROMIUM_PATH to its executable, then run the tests again"
    )
    process.exit(1)
  }
}
