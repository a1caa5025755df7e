-- wrk script: POST the JSON body in the file named by MCIG_BODY_FILE
local f = assert(io.open(os.getenv("MCIG_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = "application/json"
f:close()
