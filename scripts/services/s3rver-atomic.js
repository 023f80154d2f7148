// s3rver as the tests run it, with one change: a PUT replaces an object atomically, as S3's does. s3rver writes over
// the object's file in place, so an upload cut off midway (its client killed) left a torn object under the old
// metadata; here the content goes to a file beside it and replaces the object only once it is complete.
//   node s3rver-atomic.js <node_modules folder> <address> <port> <data folder>
'use strict';
const path = require('path');
const [modules, address, port, directory] = process.argv.slice(2);
const fs = require(path.join(modules, 'fs-extra'));
const crypto = require('crypto');
const { Transform, pipeline } = require('stream');
const S3rver = require(path.join(modules, 's3rver'));
const FilesystemStore = require(path.join(modules, 's3rver', 'lib', 'stores', 'filesystem'));

FilesystemStore.prototype.putObject = async function putObject(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.mkdirp(path.dirname(objectPath));
  const partial = `${objectPath}.${crypto.randomBytes(8).toString('hex')}.partial`;
  const md5 = crypto.createHash('md5');
  let size = 0;
  try {
    if (Buffer.isBuffer(object.content)) {
      await fs.writeFile(partial, object.content);
      md5.update(object.content);
      size = object.content.length;
    } else {
      await new Promise((resolve, reject) => pipeline(
        object.content,
        new Transform({ transform(chunk, encoding, done) { md5.update(chunk, encoding); size += chunk.length; done(null, chunk); } }),
        fs.createWriteStream(partial),
        error => (error ? reject(error) : resolve())));
    }
    await fs.rename(partial, objectPath);
  } catch (error) {
    await fs.remove(partial).catch(() => {});
    throw error;
  }
  const digest = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
};

const server = new S3rver({ address, port: Number(port), directory, silent: true });
server.run().catch(error => { console.error(error); process.exit(1); });
