module user-api

go 1.19
