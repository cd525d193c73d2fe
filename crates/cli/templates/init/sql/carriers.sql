SELECT carrier,
       name,
       character_length(name) AS name_length
FROM airlines
ORDER BY carrier
