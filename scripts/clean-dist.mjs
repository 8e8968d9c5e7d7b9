// Removes a package's dist/ before a build, so nothing a past build left behind is packed.
import { rmSync } from "node:fs"

rmSync("dist", { recursive: true, force: true })
